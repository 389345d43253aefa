// A job's live progress message, throttled for Slack's rate limits.
import type { Logger } from '../../shared/log.js';

/** Slack's chat.update budget is ~50/min per workspace; one update a second per job leaves room for several jobs. */
const PROGRESS_EVERY_MS = 1_000;

/**
 * Coalesces progress updates to at most one per PROGRESS_EVERY_MS without ever making the job wait for Slack; sends
 * go out one after another, and settle() delivers the last state before the result is posted.
 */
export class ThrottledProgress {
  private last = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: string | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly send: (running: string | undefined) => Promise<void>,
    private readonly log: Logger,
  ) {}

  update(running: string | undefined): void {
    this.running = running;
    if (this.timer) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.last + PROGRESS_EVERY_MS - Date.now()));
    this.timer.unref();
  }

  async settle(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      const wait = this.last + PROGRESS_EVERY_MS - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.fire();
    }
    await this.chain;
  }

  private fire(): void {
    this.timer = undefined;
    this.last = Date.now();
    const running = this.running;
    this.chain = this.chain
      .then(() => this.send(running))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'progress update failed'));
  }
}
