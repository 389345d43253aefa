// Runs recovery jobs on the workers: the plan, then each step in order with live progress, then the result.
// Every step is recorded in PostgreSQL as it starts and ends, so a job whose worker died is resumed, never repeating
// a finished step and never re-entering a destructive one it was inside of.
import type { EnvironmentConfig, FileConfig } from '../config.js';
import { audit } from '../audit/store.js';
import type { Db } from '../db/pool.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { KindDefinition, StepContext, StepDefinition } from './kind.js';
import { describeJob, isScheduled, jobId, type RecoveryJob, type StepRecord } from './model.js';
import type { RecoveryNotifier, RecoveryQueue } from './ports.js';
import * as store from './store.js';

/** Slack's chat.update budget is ~50/min per workspace; one update a second per job leaves room for several jobs. */
const PROGRESS_EVERY_MS = 1_000;
/** Advisory lock namespace for "this job is being run by one worker" (any constant, the same in every replica). */
const JOB_LOCK = 4_711_003;

export interface RunnerDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly notifier: RecoveryNotifier;
  readonly queue: RecoveryQueue;
  readonly kinds: Readonly<Record<RecoveryJob['kind'], KindDefinition>>;
  readonly approvers: () => string[];
  readonly log: Logger;
}

export class RecoveryRunner {
  private readonly running = new Set<AbortController>();
  private stopping = false;

  constructor(private readonly deps: RunnerDeps) {}

  /**
   * On SIGTERM: stop the external programs of running steps and hand the jobs back. The interrupted steps stay
   * recorded as running, so the next worker (the reconciler re-triggers within a minute) re-runs a step that is safe
   * to repeat, and fails a job that was inside a destructive one rather than guess.
   */
  stop(): void {
    this.stopping = true;
    for (const controller of this.running) controller.abort(new Error('Lifeline is shutting down'));
  }

  /** Works out what the job will do, posts the plan, and either waits for approval or queues the run. */
  async plan(number: number): Promise<void> {
    const job = await store.getJob(this.deps.db, number);
    if (!job || job.state !== 'planning') return;
    const env = this.env(job);
    const ctx = this.context(job, env, new AbortController().signal, () => undefined);
    let planText: string;
    try {
      planText = await this.deps.kinds[job.kind].plan(ctx);
    } catch (err) {
      const reason = err instanceof UserError ? err.message : `planning failed: ${(err as Error).message}`;
      await store.transition(this.deps.db, number, ['planning'], 'failed', { outcome: reason, finished: true });
      await audit(this.deps.db, { env: job.env, job: number, actor: 'lifeline', action: 'refused', detail: reason });
      await this.deps.notifier.tellRequester(job, `:warning: ${jobId(number)} (${describeJob(job.env, job.params)}) was not started: ${reason}`);
      if (err instanceof UserError) return;
      throw err;
    }
    await store.saveStepState(this.deps.db, number, ctx.state);
    const expiresAt = new Date(Date.now() + this.deps.file.approvals.expire_minutes * 60_000);
    const next = job.needsApproval ? 'awaiting_approval' : 'queued';
    const planned = await store.transition(this.deps.db, number, ['planning'], next, {
      plan: planText,
      ...(job.needsApproval ? { expiresAt } : {}),
    });
    if (!planned) return; // cancelled meanwhile
    await audit(this.deps.db, { env: job.env, job: number, actor: 'lifeline', action: 'planned', detail: planText });
    // A scheduled backup or drill says nothing until it has a result (one quiet line, or a loud failure).
    if (!isScheduled(planned)) {
      const posted = await this.deps.notifier.postPlan(planned, this.deps.approvers());
      await store.setApprovalMessage(this.deps.db, number, posted.channel, posted.ts);
    }
    if (job.needsApproval) await this.deps.queue.expireAt(number, expiresAt);
    else await this.deps.queue.run(number);
  }

  /**
   * Re-adds the trigger of every unfinished job. Safe to repeat anywhere: plans and expiries check the job's state,
   * and a run trigger for a job another worker is running finds its lock taken and returns.
   */
  async reconcile(): Promise<number> {
    const jobs = await store.jobsToReconcile(this.deps.db);
    for (const job of jobs) {
      if (job.state === 'planning') await this.deps.queue.plan(job.number);
      else if (job.state === 'awaiting_approval' && job.expiresAt) await this.deps.queue.expireAt(job.number, job.expiresAt);
      else if (job.state === 'queued' || job.state === 'running') await this.deps.queue.run(job.number);
    }
    return jobs.length;
  }

  /** Runs (or resumes) an approved job. One worker at a time per job, held by a PostgreSQL session lock. */
  async run(number: number): Promise<void> {
    const lockClient = await this.deps.db.connect();
    try {
      const { rows } = await lockClient.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS locked', [JOB_LOCK, number]);
      if (!rows[0]?.locked) {
        this.deps.log.info({ job: jobId(number) }, 'job is being run by another worker');
        return;
      }
      try {
        await this.runLocked(number);
      } finally {
        await lockClient.query('SELECT pg_advisory_unlock($1, $2)', [JOB_LOCK, number]).catch(() => undefined);
      }
    } finally {
      lockClient.release();
    }
  }

  private async runLocked(number: number): Promise<void> {
    const { db } = this.deps;
    const queued = await store.getJob(db, number);
    if (!queued || (queued.state !== 'queued' && queued.state !== 'running')) return;
    const job = (await store.transition(db, number, ['queued', 'running'], 'running', { started: true }))!;
    const env = this.env(job);
    const kind = this.deps.kinds[job.kind];
    const definitions = kind.steps(job, env);
    const abort = new AbortController();
    this.running.add(abort);
    try {
      await this.steps(number, job, env, kind, definitions, abort);
    } finally {
      this.running.delete(abort);
    }
  }

  private async steps(
    number: number,
    job: RecoveryJob,
    env: EnvironmentConfig,
    kind: KindDefinition,
    definitions: readonly StepDefinition[],
    abort: AbortController,
  ): Promise<void> {
    const { db } = this.deps;
    let records = await store.steps(db, number);
    const progress = new ThrottledProgress(async (running) => {
      if (isScheduled(job)) return;
      const latest = await this.current(number);
      const posted = await this.deps.notifier.progress(latest, await store.steps(db, number), running);
      if (!latest.progress) await store.setProgressMessage(db, number, posted.channel, posted.ts);
    }, this.deps.log);
    let currentStep = '';
    const ctx = this.context(job, env, abort.signal, (detail) => progress.update(`${currentStep}: ${detail}`));
    const startedAt = job.startedAt ?? new Date();

    for (const [index, step] of definitions.entries()) {
      const record = records.find((r) => r.index === index);
      if (record?.state === 'succeeded') continue;
      if (record?.state === 'running' && step.destructive) {
        return this.finish(ctx, progress, startedAt, false, `the worker stopped inside "${step.name}", a step that is never run twice; check the target before trying again`);
      }
      if (this.stopping) return;
      const latest = await this.current(number);
      if (latest.cancelRequestedBy) {
        await store.transition(db, number, ['running'], 'cancelled', { outcome: `cancelled by <@${latest.cancelRequestedBy}> before "${step.name}"`, finished: true });
        await audit(db, { env: job.env, job: number, actor: latest.cancelRequestedBy, action: 'cancelled', detail: `before ${step.name}` });
        await this.report(ctx, progress, startedAt, false, `Cancelled by <@${latest.cancelRequestedBy}> before "${step.name}"; nothing after it ran.`);
        return;
      }
      await store.startStep(db, number, index, step.name, step.destructive);
      await audit(db, { env: job.env, job: number, actor: 'lifeline', action: 'step_started', detail: step.name });
      currentStep = step.name;
      progress.update(step.name);
      try {
        const detail = await step.run(ctx);
        await store.finishStep(db, number, index, 'succeeded', detail);
        await store.saveStepState(db, number, ctx.state);
        await audit(db, { env: job.env, job: number, actor: 'lifeline', action: 'step_succeeded', detail: `${step.name}: ${detail}` });
      } catch (err) {
        if (this.stopping) {
          this.deps.log.info({ job: jobId(number), step: step.name }, 'step interrupted by shutdown; the job is handed back');
          return;
        }
        const reason = (err as Error).message;
        await store.finishStep(db, number, index, 'failed', reason);
        await store.saveStepState(db, number, ctx.state);
        await audit(db, { env: job.env, job: number, actor: 'lifeline', action: 'step_failed', detail: `${step.name}: ${reason}` });
        let recovery: string | undefined;
        try {
          recovery = await kind.onFailure?.(ctx, step.name);
        } catch (undoErr) {
          recovery = `putting things back failed too: ${(undoErr as Error).message}`;
        }
        return this.finish(ctx, progress, startedAt, false, `"${step.name}" failed: ${reason}${recovery ? `. ${recovery}` : ''}`);
      }
      records = await store.steps(db, number);
      progress.update(undefined);
    }
    return this.finish(ctx, progress, startedAt, true, undefined);
  }

  private async finish(ctx: StepContext, progress: ThrottledProgress, startedAt: Date, succeeded: boolean, failure: string | undefined): Promise<void> {
    const { db } = this.deps;
    const { headline } = this.deps.kinds[ctx.job.kind].summarise(ctx, succeeded);
    const outcome = failure ?? headline;
    await store.transition(db, ctx.job.number, ['running'], succeeded ? 'succeeded' : 'failed', { outcome, finished: true });
    await audit(db, { env: ctx.job.env, job: ctx.job.number, actor: 'lifeline', action: succeeded ? 'succeeded' : 'failed', detail: outcome });
    await this.report(ctx, progress, startedAt, succeeded, failure);
  }

  /** The progress message's last update (its final state, within the once-a-second budget), then the result. */
  private async report(ctx: StepContext, progress: ThrottledProgress, startedAt: Date, succeeded: boolean, failure: string | undefined): Promise<void> {
    progress.update(undefined);
    await progress.settle();
    const job = await this.current(ctx.job.number);
    const stepRecords = await store.steps(this.deps.db, job.number);
    const summary = this.deps.kinds[job.kind].summarise(ctx, succeeded);
    // Cancelling takes effect between steps; one asked for during the last step could not stop anything.
    const lateCancel = succeeded && job.cancelRequestedBy ? ` (the cancel by <@${job.cancelRequestedBy}> came during the last step, too late to stop it)` : '';
    const { headline, verified } = { ...summary, headline: `${summary.headline}${lateCancel}` };
    try {
      await this.deps.notifier.result(job, stepRecords, {
        succeeded,
        headline: failure ?? headline,
        verified,
        totalMs: Date.now() - startedAt.getTime(),
        ...(succeeded && summary.incomplete ? { incomplete: true } : {}),
      });
    } catch (err) {
      this.deps.log.error({ job: jobId(job.number), err: (err as Error).message }, 'job result could not be posted');
    }
    // The plan message is where people look first: it says how the job ended, not "approved, queued" forever.
    await this.deps.notifier.updatePlan(job, this.deps.approvers()).catch((err: Error) => this.deps.log.warn({ job: jobId(job.number), err: err.message }, 'plan message update failed'));
  }

  private async current(number: number): Promise<RecoveryJob> {
    return (await store.getJob(this.deps.db, number))!;
  }

  private env(job: RecoveryJob): EnvironmentConfig {
    const env = this.deps.file.environments[job.env];
    if (!env) throw new UserError('bad_command', `environment ${job.env} is no longer configured`);
    return env;
  }

  private context(job: RecoveryJob, env: EnvironmentConfig, signal: AbortSignal, note: (detail: string) => void): StepContext {
    return { job, env, state: { ...job.stepState }, signal, note };
  }
}

/**
 * Coalesces progress updates to at most one per PROGRESS_EVERY_MS without ever making the job wait for Slack; sends
 * go out one after another, and settle() delivers the last state before the result is posted.
 */
class ThrottledProgress {
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
    this.chain = this.chain.then(() => this.send(running)).catch((err: Error) => this.log.warn({ err: err.message }, 'progress update failed'));
  }
}

export type { StepRecord };
