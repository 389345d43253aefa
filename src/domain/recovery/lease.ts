// A running job's (or runbook run's) lease on its row, kept alive by a heartbeat (see runner.ts for why a lease and
// not a lock).
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransientPgError } from '../../pgtools/client.js';
import { messageOf } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { within } from '../../shared/timeout.js';

/** What a renewal says: undefined when the lease is no longer this worker's. */
export type Renewed = { readonly cancelRequestedBy?: string | undefined } | undefined;

/** The heartbeat is also how a running job hears of `/dr cancel`: at most this long after it. */
const HEARTBEAT_MAX_MS = 2_000;

/**
 * Keeps a job's lease: renews it every heartbeat, and hears of a cancel on the way. The lease is lost when a renewal
 * is refused (somebody else took the job, or it ran out) or when none succeeded for so long that it may run out on
 * the server: a renewal sent at T extends it to at least T + lease by the server's clock, so the local clock (which
 * runs at the server's rate, whatever its offset) stops the job at T + lease - margin, leaving the margin to stop the
 * step's programs before another worker may take over. Transient errors are ridden out until then.
 */
export class LeaseKeeper<L> {
  lost = false;
  private validUntil: number;
  private readonly heartbeatMs: number;
  private readonly marginMs: number;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private expiry: ReturnType<typeof setTimeout> | undefined;
  private renewing = false;
  /** After stop, a renewal still in flight says nothing: the lease was given up, not lost. */
  private stopped = false;

  /**
   * `renew` extends the lease by `leaseMs` on the server's clock if this worker still holds it; `label` names what it
   * is the lease of in log lines (JOB-7, RUN-3).
   */
  constructor(
    readonly lease: L,
    private readonly renewLease: () => Promise<Renewed>,
    private readonly label: string,
    private readonly leaseMs: number,
    private readonly log: Logger,
    private readonly events: { lost(why: string): void; cancelled(by: string): void },
  ) {
    this.heartbeatMs = Math.min(leaseMs / 3, HEARTBEAT_MAX_MS);
    this.marginMs = leaseMs / 3;
    // Taking the lease was sent before now, so this is on the safe side too.
    this.validUntil = Date.now() + leaseMs - this.marginMs;
  }

  start(): void {
    this.heartbeat = setInterval(() => void this.renew(), this.heartbeatMs);
    this.heartbeat.unref();
    this.armExpiry();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.expiry);
  }

  private armExpiry(): void {
    clearTimeout(this.expiry);
    this.expiry = setTimeout(
      () => this.lose('no renewal got through in time'),
      Math.max(0, this.validUntil - Date.now()),
    );
    this.expiry.unref();
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.lost) return;
    this.renewing = true;
    const sentAt = Date.now();
    try {
      // A renewal that hangs must not hold up the next one; the expiry timer runs regardless.
      const renewed = await within(this.renewLease(), this.leaseMs - this.marginMs, 'renewing the lease');
      if (this.lost || this.stopped) return;
      if (!renewed) {
        this.lose('somebody else holds it now, or it ran out');
        return;
      }
      this.validUntil = sentAt + this.leaseMs - this.marginMs;
      this.armExpiry();
      if (renewed.cancelRequestedBy) this.events.cancelled(renewed.cancelRequestedBy);
    } catch (err) {
      this.log.warn({ of: this.label, err: messageOf(err) }, 'renewing the lease failed; trying again');
    } finally {
      this.renewing = false;
    }
  }

  private lose(why: string): void {
    if (this.lost) return;
    this.lost = true;
    this.stop();
    this.events.lost(why);
  }
}

/** Between attempts to record a step while PostgreSQL does not answer (for as long as the lease lasts). */
const WRITE_RETRY_MS = 500;

/**
 * A write fenced on the lease (`attempt`). While PostgreSQL does not answer it is tried again for as long as the lease
 * lasts: a step that finished is worth recording rather than repeating (or putting back) on another worker.
 */
export async function writeWhileLeased<T>(
  keeper: { readonly lost: boolean },
  lostError: () => Error,
  attempt: () => Promise<T>,
  retrying: (err: unknown) => void,
): Promise<T> {
  for (;;) {
    if (keeper.lost) throw lostError();
    try {
      return await attempt();
    } catch (err) {
      if (!isTransientPgError(err)) throw err;
      retrying(err);
      await sleep(WRITE_RETRY_MS);
    }
  }
}
