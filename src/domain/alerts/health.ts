// Health checks: each env's health_url is probed once per scheduler slot (a BullMQ job scheduler, so
// once per interval however many replicas run); the streak of consecutive failures and successes lives in PostgreSQL
// (health_checks), changed under a row lock. Three failures in a row declare one SEV1 "<env> health check failing"
// through the same path as alerts (source kind `health`, key = env, so the unique index gives "once"); three successes
// in a row resolve it as Lifeline, whatever alerts.auto_resolve says. Only the flips act: a failure while failing
// changes nothing on the incident, so the timeline gets at most one entry per change of state.
import type { FileConfig } from '../../shared/config.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import { UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import { SYSTEM_ACTOR } from '../access/permissions.js';
import { incidentId, type AlertSource } from '../incidents/model.js';
import type { IncidentService } from '../incidents/service.js';
import * as store from '../incidents/store.js';

/** Failures in a row that declare, successes in a row that resolve. */
export const HEALTH_STREAK = 3;
export const DEFAULT_HEALTH_CHECK_SECONDS = 30;

/** What one probe found. `reason` says why a failure failed. */
export interface HealthProbe {
  readonly ok: boolean;
  readonly status: number | undefined;
  readonly latencyMs: number;
  readonly reason: string | undefined;
}

/** The interval every env's health_url is probed at: alerts.health_check_seconds, else 30 s (also without alerts:). */
export function healthCheckSeconds(file: FileConfig): number {
  return file.alerts?.health_check_seconds ?? DEFAULT_HEALTH_CHECK_SECONDS;
}

/** A probe's bound: less than the interval, so a hanging target never overlaps the next slot; at most 10 s. */
export function probeTimeoutMs(intervalSeconds: number): number {
  return Math.min(10_000, Math.round((intervalSeconds * 1000) / 2));
}

/** One GET. Success is a 2xx or 3xx answer (redirects are not followed); anything else fails with its reason. */
export async function probe(url: string, timeoutMs: number): Promise<HealthProbe> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await response.body?.cancel().catch(() => undefined);
    const ok = response.status >= 200 && response.status < 400;
    return { ok, status: response.status, latencyMs: latency(), reason: ok ? undefined : `HTTP ${response.status}` };
  } catch (err) {
    return { ok: false, status: undefined, latencyMs: latency(), reason: failureReason(err, timeoutMs) };
  }
}

function failureReason(err: unknown, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms (timed out)`;
  const code = error.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)';
  if (code) return `${error.cause?.message ?? error.message} (${code})`;
  return error.cause?.message ?? error.message;
}

/** The streak of one env, as health_checks keeps it. */
export interface HealthStreak {
  readonly failures: number;
  readonly successes: number;
  readonly failing: boolean;
}

export type HealthFlip = 'failing' | 'recovered' | undefined;

/** The streak after one probe, and whether it flipped. Pure: the store applies it under the row lock. */
export function nextStreak(before: HealthStreak, ok: boolean): HealthStreak & { flip: HealthFlip } {
  if (ok) {
    const successes = before.successes + 1;
    const flip = before.failing && successes >= HEALTH_STREAK ? 'recovered' : undefined;
    return { failures: 0, successes, failing: before.failing && !flip, flip };
  }
  const failures = before.failures + 1;
  const flip = !before.failing && failures >= HEALTH_STREAK ? 'failing' : undefined;
  return { failures, successes: 0, failing: before.failing || flip === 'failing', flip };
}

export type HealthOutcome = 'declared' | 'repeat' | 'resolved' | 'counted' | 'duplicate';

export interface HealthCheckResult {
  readonly probe: HealthProbe;
  readonly outcome: HealthOutcome;
  readonly failures: number;
  readonly successes: number;
  readonly incident?: number;
}

export interface HealthCheckDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly incidents: Pick<IncidentService, 'declare' | 'resolve'>;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class HealthChecks {
  constructor(private readonly deps: HealthCheckDeps) {}

  /**
   * Probes `env`'s health_url for the scheduler slot `slot` (epoch ms; a slot counts once) and acts on a flip.
   * An env without health_url (removed from the config since the slot was planned) is left alone.
   */
  async check(env: string, slot: number): Promise<HealthCheckResult | undefined> {
    const url = this.deps.file.environments[env]?.health_url;
    if (!url) return undefined;
    const seconds = healthCheckSeconds(this.deps.file);
    const at = new Date();
    const result = await probe(url, probeTimeoutMs(seconds));
    const outcome = result.ok ? 'success' : 'failure';
    this.deps.metrics.healthProbe.observe({ env, outcome }, result.latencyMs / 1000);
    return this.record(env, url, slot, result, at);
  }

  /** Counts one probe's result and does what a flip (or a flip a crash left undone) asks for. */
  async record(env: string, url: string, slot: number, result: HealthProbe, at: Date): Promise<HealthCheckResult> {
    const counted = await countProbe(this.deps.db, env, slot, result);
    const base = { probe: result, failures: counted?.failures ?? 0, successes: counted?.successes ?? 0 };
    if (!counted) return { ...base, outcome: 'duplicate' };
    if (counted.act === 'declare') return { ...base, ...(await this.declare(env, url, result, at)) };
    if (counted.act === 'resolve') return { ...base, ...(await this.resolve(env, url, result)) };
    return { ...base, outcome: 'counted' };
  }

  private async declare(env: string, url: string, result: HealthProbe, at: Date) {
    const source: AlertSource = {
      kind: 'health',
      key: env,
      name: env,
      labels: { env, url },
      annotations: {
        last_status: result.status === undefined ? 'no answer' : `HTTP ${result.status}`,
        latency: `${result.latencyMs} ms`,
        reason: result.reason ?? 'unknown',
        failures_in_a_row: String(HEALTH_STREAK),
      },
      link: url,
    };
    const { incident, repeated } = await this.deps.incidents.declare({
      severity: 'sev1',
      title: `${env} health check failing`,
      actor: SYSTEM_ACTOR,
      channel: this.deps.file.slack.emergency_channel,
      at,
      source,
      repeat: `health check of ${env} still failing: ${describeProbe(url, result)}`,
    });
    // The timeline says what failed, once for this change of state (a repeat already noted it through declare).
    if (!repeated) {
      const detail = `health check of ${env} failing: ${HEALTH_STREAK} failures in a row; last ${describeProbe(url, result)}`;
      await store.appendEvent(this.deps.db, incident.number, SYSTEM_ACTOR, 'alert_state', detail);
    }
    await settle(this.deps.db, env, 'declare');
    const outcome = repeated ? 'repeat' : 'declared';
    this.deps.metrics.alertsReceived.inc({ source: 'health', outcome });
    this.deps.log.warn({ env, url, incident: incidentId(incident.number), reason: result.reason }, 'health failing');
    return { outcome, incident: incident.number } as const;
  }

  private async resolve(env: string, url: string, result: HealthProbe) {
    const open = await store.openBySource(this.deps.db, { kind: 'health', key: env });
    let resolved: number | undefined;
    if (open) {
      const note = `health check of ${env} passing again: ${HEALTH_STREAK} successes in a row (${describeProbe(url, result)})`;
      try {
        await this.deps.incidents.resolve({ number: open.number }, SYSTEM_ACTOR, note);
        resolved = open.number;
      } catch (err) {
        // Resolved by someone else between the lookup and now: nothing left to do.
        if (!(err instanceof UserError && err.code === 'incident_resolved')) throw err;
      }
    }
    await settle(this.deps.db, env, 'resolve');
    if (resolved === undefined) return { outcome: 'counted' } as const;
    this.deps.metrics.alertsReceived.inc({ source: 'health', outcome: 'resolved' });
    this.deps.log.info({ env, url, incident: incidentId(resolved) }, 'health recovered');
    return { outcome: 'resolved', incident: resolved } as const;
  }
}

/** "https://x/health: HTTP 503 in 12 ms", "https://x/health: no answer (connection refused) in 3 ms". */
export function describeProbe(url: string, result: HealthProbe): string {
  const answer = result.status !== undefined ? `HTTP ${result.status}` : `no answer (${result.reason ?? 'error'})`;
  return `${url}: ${answer} in ${result.latencyMs} ms`;
}

interface CountedRow {
  failures: number;
  successes: number;
  /** What this probe must do: a flip's action, or one a crash left undone a minute ago or more. */
  act: 'declare' | 'resolve' | undefined;
}

/** How long a flip's action may take before a later probe takes it on again. */
const REDO_AFTER_SECONDS = 60;

/**
 * Counts one probe under the env's row lock. A flip leaves `pending` set until settle() clears it; a probe that finds
 * it still set after REDO_AFTER_SECONDS (the process that flipped it died) takes it on again. Undefined: this slot
 * (or a later one) was counted already.
 */
async function countProbe(db: Db, env: string, slot: number, result: HealthProbe): Promise<CountedRow | undefined> {
  return inTransaction(db, async (tx) => {
    await tx.query('INSERT INTO health_checks (env) VALUES ($1) ON CONFLICT (env) DO NOTHING', [env]);
    const { rows } = await tx.query<
      HealthStreak & { last_slot: string; pending: 'declare' | 'resolve' | null; stale: boolean }
    >(
      `SELECT failures, successes, failing, last_slot, pending,
              coalesce(pending_at < now() - make_interval(secs => $2), false) AS stale
         FROM health_checks WHERE env = $1 FOR UPDATE`,
      [env, REDO_AFTER_SECONDS],
    );
    const before = rows[0]!;
    if (Number(before.last_slot) >= slot) return undefined;
    const next = nextStreak(before, result.ok);
    const flipped = next.flip === 'failing' ? 'declare' : next.flip === 'recovered' ? 'resolve' : undefined;
    const act = flipped ?? (before.pending !== null && before.stale ? before.pending : undefined);
    await tx.query(
      `UPDATE health_checks SET failures = $2, successes = $3, failing = $4, pending = $5, last_slot = $6,
         last_ok = $7, last_status = $8, last_latency_ms = $9, last_reason = $10, probed_at = now(),
         pending_at = CASE WHEN $11 THEN now() ELSE pending_at END
       WHERE env = $1`,
      [
        env,
        next.failures,
        next.successes,
        next.failing,
        flipped ?? before.pending,
        slot,
        result.ok,
        result.status ?? null,
        result.latencyMs,
        result.reason ?? null,
        act !== undefined,
      ],
    );
    return { failures: next.failures, successes: next.successes, act };
  });
}

/** What a flip owed is done (unless a later flip asked for something else meanwhile). */
async function settle(db: Db, env: string, done: 'declare' | 'resolve'): Promise<void> {
  await db.query('UPDATE health_checks SET pending = NULL, pending_at = NULL WHERE env = $1 AND pending = $2', [
    env,
    done,
  ]);
}
