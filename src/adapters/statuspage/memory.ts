import type {
  NewStatuspageIncident,
  StatuspageChange,
  StatuspageIncident,
  StatuspagePort,
  StatuspageStatus,
  ComponentStatus,
} from './port.js';

export interface MemoryStatuspageIncident {
  readonly id: string;
  name: string;
  status: StatuspageStatus;
  components: Record<string, ComponentStatus>;
  readonly bodies: string[];
}

/** In-memory StatuspagePort for tests: keeps the incidents; `failNext` makes the next calls throw. */
export class MemoryStatuspage implements StatuspagePort {
  readonly incidents: MemoryStatuspageIncident[] = [];
  /** Every call, failed or not, in order. */
  readonly calls: { readonly kind: 'create' | 'update'; readonly id?: string }[] = [];
  private failures: Error[] = [];

  /** The next `times` calls throw `error`. */
  failNext(error: Error, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(error);
  }

  async createIncident(incident: NewStatuspageIncident): Promise<StatuspageIncident> {
    this.calls.push({ kind: 'create' });
    this.maybeFail();
    const id = `mem${this.incidents.length + 1}`;
    this.incidents.push({
      id,
      name: incident.name,
      status: incident.status,
      components: { ...incident.components },
      bodies: [incident.body],
    });
    return { id, shortlink: `https://stspg.io/${id}`, status: incident.status };
  }

  async updateIncident(id: string, change: StatuspageChange): Promise<StatuspageIncident> {
    this.calls.push({ kind: 'update', id });
    this.maybeFail();
    const found = this.incidents.find((i) => i.id === id);
    if (!found) throw new Error(`no status page incident ${id}`);
    found.status = change.status;
    found.bodies.push(change.body);
    if (change.components) Object.assign(found.components, change.components);
    return { id, shortlink: `https://stspg.io/${id}`, status: change.status };
  }

  private maybeFail(): void {
    const failure = this.failures.shift();
    if (failure) throw failure;
  }
}
