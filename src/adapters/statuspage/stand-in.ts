// The Atlassian Statuspage stand-in: `POST /pages/{page_id}/incidents` and `PATCH /pages/{page_id}/incidents/{id}`
// under STATUSPAGE_API_URL, with the real service's rules and error shapes: 401 without the page's key
// (`Authorization: OAuth <key>`), 404 for an unknown page or incident, 422 for a bad status or component status.
// It keeps every incident and call for the tests; `failNext` makes the next calls fail with 500 or 429.
import {
  isObject,
  jsonAnswer,
  ScriptedFailures,
  serveOnLoopback,
  type HttpAnswer,
  type HttpRequest,
  type LoopbackServer,
} from '../../shared/loopback-server.js';
import { COMPONENT_STATUSES, STATUSPAGE_STATUSES, type ComponentStatus, type StatuspageStatus } from './port.js';

export interface StandInIncident {
  readonly id: string;
  readonly name: string;
  status: StatuspageStatus;
  readonly shortlink: string;
  readonly components: Record<string, ComponentStatus>;
  /** Each status and body as posted, oldest first (Statuspage's incident_updates). */
  readonly updates: { status: StatuspageStatus; body: string; at: number }[];
  resolvedAt: number | undefined;
}

export interface StandInCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly at: number;
}

export interface StatuspageStandInOptions {
  readonly pageId: string;
  readonly apiKey: string;
  /** The page's component ids; a call naming any other is refused. */
  readonly components: readonly string[];
}

export class StatuspageStandIn {
  readonly incidents: StandInIncident[] = [];
  /** Every request, with the status it was answered with. */
  readonly calls: StandInCall[] = [];
  /** The page's components and their current status. */
  readonly components: Record<string, ComponentStatus>;
  /** Delay before answering each request, to hold a call in flight (a slow Statuspage). */
  delayMs = 0;
  /** Requests received and not answered yet. */
  inFlight = 0;
  /** STATUSPAGE_API_URL, once `start` serves the stand-in. */
  url = '';
  private readonly failures = new ScriptedFailures();
  private server: LoopbackServer | undefined;

  constructor(private readonly options: StatuspageStandInOptions) {
    this.components = Object.fromEntries(options.components.map((id) => [id, 'operational' as const]));
  }

  async start(): Promise<this> {
    this.server = await serveOnLoopback(async (request) => {
      this.inFlight++;
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      this.inFlight--;
      return this.answer(request);
    });
    this.url = `${this.server.url}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }

  /** The next `times` requests are answered `status` (500, 429...), with a Retry-After when given. */
  failNext(times: number, status: 500 | 502 | 503 | 429 = 500, retryAfterSeconds?: number): void {
    this.failures.add(times, status, retryAfterSeconds);
  }

  /** One request, answered as Statuspage answers it. */
  answer(request: HttpRequest): HttpAnswer {
    const method = request.method ?? 'POST';
    const answer = this.route(method, request);
    this.calls.push({ method, path: request.path, status: answer.status, at: Date.now() });
    return answer;
  }

  private route(method: string, { path, headers, raw }: HttpRequest): HttpAnswer {
    const failure = this.failures.next(() => ({ error: 'Internal Server Error (stand-in failure)' }));
    if (failure) return failure;
    if (headers.authorization !== `OAuth ${this.options.apiKey}`) {
      return jsonAnswer(401, { error: 'Could not authenticate' });
    }
    const match = /^v1\/pages\/([^/]+)\/incidents(?:\/([^/]+))?$/.exec(path);
    if (!match || match[1] !== this.options.pageId)
      return jsonAnswer(404, { error: 'The requested resource was not found' });
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return jsonAnswer(400, { error: 'Body is not valid JSON' });
    }
    const incident = isObject(body) && isObject(body.incident) ? body.incident : undefined;
    if (!incident) return jsonAnswer(400, { error: 'incident is missing' });
    const id = match[2];
    if (id === undefined && method === 'POST') return this.create(incident);
    if (id !== undefined && (method === 'PATCH' || method === 'PUT')) return this.update(id, incident);
    return jsonAnswer(405, { error: 'Method not allowed' });
  }

  private create(fields: Record<string, unknown>): HttpAnswer {
    const name = typeof fields.name === 'string' ? fields.name.trim() : '';
    if (name === '') return jsonAnswer(422, { error: "Name can't be blank" });
    const checked = this.check(fields, true);
    if ('error' in checked) return checked.error;
    const id = `sp${String(this.incidents.length + 1).padStart(4, '0')}`;
    const incident: StandInIncident = {
      id,
      name,
      status: checked.status ?? 'investigating',
      shortlink: `https://stspg.io/${id}`,
      components: { ...checked.components },
      updates: [],
      resolvedAt: undefined,
    };
    this.incidents.push(incident);
    this.apply(incident, incident.status, checked.body, checked.components);
    return jsonAnswer(201, this.view(incident));
  }

  private update(id: string, fields: Record<string, unknown>): HttpAnswer {
    const incident = this.incidents.find((i) => i.id === id);
    if (!incident) return jsonAnswer(404, { error: 'The requested resource was not found' });
    const checked = this.check(fields, false);
    if ('error' in checked) return checked.error;
    this.apply(incident, checked.status ?? incident.status, checked.body, checked.components);
    return jsonAnswer(200, this.view(incident));
  }

  private check(
    fields: Record<string, unknown>,
    creating: boolean,
  ):
    | { status: StatuspageStatus | undefined; body: string; components: Record<string, ComponentStatus> }
    | { error: HttpAnswer } {
    const status = STATUSPAGE_STATUSES.find((s) => s === fields.status);
    if (fields.status !== undefined && status === undefined) {
      return { error: jsonAnswer(422, { error: 'Status is not included in the list' }) };
    }
    if (creating && status === undefined) return { error: jsonAnswer(422, { error: "Status can't be blank" }) };
    const components: Record<string, ComponentStatus> = {};
    const given = isObject(fields.components) ? fields.components : {};
    for (const [component, value] of Object.entries(given)) {
      if (!(component in this.components)) {
        return { error: jsonAnswer(404, { error: `Component ${component} was not found` }) };
      }
      const valid = COMPONENT_STATUSES.find((s) => s === value);
      if (!valid) return { error: jsonAnswer(422, { error: 'Component status is not included in the list' }) };
      components[component] = valid;
    }
    return { status, body: typeof fields.body === 'string' ? fields.body : '', components };
  }

  private apply(
    incident: StandInIncident,
    status: StatuspageStatus,
    body: string,
    components: Record<string, ComponentStatus>,
  ): void {
    incident.status = status;
    if (status === 'resolved' && incident.resolvedAt === undefined) incident.resolvedAt = Date.now();
    // Resolving does not reset components by itself, as on the real service: only what is sent changes.
    Object.assign(incident.components, components);
    Object.assign(this.components, components);
    incident.updates.push({ status, body, at: Date.now() });
  }

  private view(incident: StandInIncident): Record<string, unknown> {
    return {
      id: incident.id,
      page_id: this.options.pageId,
      name: incident.name,
      status: incident.status,
      shortlink: incident.shortlink,
      resolved_at: incident.resolvedAt === undefined ? null : new Date(incident.resolvedAt).toISOString(),
      components: Object.entries(incident.components).map(([id, status]) => ({ id, status })),
      incident_updates: incident.updates.map((u) => ({ status: u.status, body: u.body })).reverse(),
    };
  }
}
