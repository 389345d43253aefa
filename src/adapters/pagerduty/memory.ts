import type { PagerEvent, PagerPort } from './port.js';

/** In-memory PagerPort for unit tests: records events; `failNext` makes the next send throw. */
export class MemoryPager implements PagerPort {
  readonly events: PagerEvent[] = [];
  private pendingFailure: Error | undefined;

  failNext(error: Error): void {
    this.pendingFailure = error;
  }

  async send(event: PagerEvent): Promise<void> {
    const failure = this.pendingFailure;
    this.pendingFailure = undefined;
    if (failure) throw failure;
    this.events.push(event);
  }
}
