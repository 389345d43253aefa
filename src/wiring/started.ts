// What a process started, each with its stop. Things stop in reverse order of start, so nothing stops before what
// was started on top of it; one stop that fails is reported and the others still run.
import { messageOf } from '../shared/errors.js';
export class StartedList {
  private readonly started: { readonly name: string; readonly stop: () => Promise<unknown> }[] = [];

  add(name: string, stop: () => Promise<unknown>): void {
    this.started.push({ name, stop });
  }

  /** Stops everything started so far, last first; `failed` hears of each stop that threw. Stops each thing once. */
  async stopAll(failed: (name: string, message: string) => void): Promise<void> {
    for (let next = this.started.pop(); next !== undefined; next = this.started.pop()) {
      const { name, stop } = next;
      await stop().catch((err: unknown) => failed(name, messageOf(err)));
    }
  }
}
