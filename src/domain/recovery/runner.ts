// Runs recovery jobs on the workers: the plan, then each step in order with live progress, then the result.
// Every step is recorded in PostgreSQL as it starts and ends, so a job whose worker died is resumed by another: a
// finished step never runs again, and a destructive step its worker died inside of is never re-entered (the kind's
// put-back and cleanup run instead, and the job fails saying what they did).
//
// One worker at a time runs a job, fenced by a lease on the job's row (store.takeLease) rather than a session advisory
// lock, which vanishes silently with its pooled connection when PostgreSQL restarts or the network drops, letting a
// second worker run the job beside the first. The lease is renewed by a heartbeat; a worker that cannot renew it in
// time stops its step (killing its programs) before anybody else may take the job, and every write it makes for the
// job is fenced on its lease, so a worker that lost it cannot change the job any more.
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { EnvironmentConfig, FileConfig } from '../../shared/config.js';
import { audit } from '../audit/store.js';
import type { Db, DbClient } from '../../shared/db/pool.js';
import { messageOf, UserError } from '../../shared/errors.js';
import { formatDuration } from '../../shared/format.js';
import type { Logger } from '../../shared/log.js';
import { person, plainSaid, said, type Said } from '../../shared/text.js';
import { StateMismatchError, type NamedStep, type NothingToChange, type OpenJob, type StopReason } from './kind.js';
import type { KindsTable } from './kinds/index.js';
import { describeJob, isScheduled, jobId, type RecoveryJob, type StepRecord } from './model.js';
import { AbortError } from '../../pgtools/errors.js';
import type { RecoveryNotifier, RecoveryQueue } from './notifier.js';
import { LeaseKeeper, writeWhileLeased } from './lease.js';
import { ThrottledProgress } from './progress.js';
import * as store from './store.js';

export interface RunnerDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly notifier: RecoveryNotifier;
  readonly queue: RecoveryQueue;
  readonly kinds: KindsTable;
  /** Who may approve the job (RecoveryService.approversFor), for its plan message. */
  readonly approvers: (job: RecoveryJob) => readonly string[];
  readonly log: Logger;
  /** How long a lease lasts without a renewal (LIFELINE_JOB_LEASE_SECONDS): how soon another worker takes over. */
  readonly leaseMs: number;
  /** A step's deadline unless its kind says otherwise (LIFELINE_STEP_DEADLINE_MINUTES). */
  readonly stepDeadlineMs: number;
}

/** Why the runner (or the runbook engine) stopped a running step. */
export type StopCause = 'deadline' | 'cancel' | 'shutdown' | 'lease';

/** The reason a step's signal carries when the runner stopped it. */
export class StepStopped extends Error {
  constructor(
    readonly cause: StopCause,
    message: string,
  ) {
    super(message);
    this.name = 'StepStopped';
  }
}

/** One job this worker runs: its lease, and the step in progress (to stop it). */
interface ActiveRun {
  readonly keeper: LeaseKeeper<store.Lease>;
  /** Fires only when the lease is lost: the failure handling stops then, and only then. */
  readonly leaseLost: AbortController;
  step: { readonly controller: AbortController; readonly definition: NamedStep } | undefined;
  cancelledBy: string | undefined;
}

type StepOutcome =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly error: unknown; readonly stopped: StepStopped | undefined };

export class RecoveryRunner {
  /** Unique per process: a lease owner is this plus a fresh id per run. */
  private readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly active = new Set<ActiveRun>();
  private stopping = false;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: RunnerDeps) {}

  /**
   * Starts looking, every third of a lease, for jobs whose lease ran out (their worker died or was cut off) or that
   * wait with none, and triggers each once per lease: a job is taken over within about a lease and a third.
   */
  start(): void {
    this.sweeper = setInterval(
      () => {
        void this.sweep().catch((err: Error) =>
          this.deps.log.warn({ err: err.message }, 'looking for jobs without a live lease failed'),
        );
      },
      Math.max(250, Math.round(this.deps.leaseMs / 3)),
    );
    this.sweeper.unref();
  }

  /**
   * On SIGTERM: stop the programs of running steps and hand the jobs back. A step that provably changed nothing is
   * forgotten and runs again on the next worker; one that may have changed something stays recorded as running, so
   * the next worker repeats it if that is safe, or puts things back if it was destructive. The lease is given up, so
   * a worker that is still up takes the job at once.
   */
  stop(): void {
    this.stopping = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const run of this.active) run.step?.controller.abort(new StepStopped('shutdown', 'Lifeline is shutting down'));
  }

  /** Triggers every job a worker may take now; returns how many. */
  async sweep(): Promise<number> {
    if (this.stopping) return 0;
    const jobs = await store.jobsWithoutLiveLease(this.deps.db);
    for (const job of jobs) await this.deps.queue.run(job.number, `lease-${job.epoch}`);
    return jobs.length;
  }

  /** Works out what the job will do, posts the plan, and either waits for approval or queues the run. */
  async plan(number: number): Promise<void> {
    const job = await store.getJob(this.deps.db, number);
    if (!job || job.state !== 'planning') return;
    const env = this.env(job);
    let open: OpenJob;
    let planned: string | NothingToChange;
    try {
      open = this.deps.kinds[job.kind].open(job, env, 'planning');
      planned = await open.plan(new AbortController().signal);
    } catch (err) {
      const reason = err instanceof UserError ? err.said : [`planning failed: ${messageOf(err)}`];
      await store.transition(this.deps.db, number, ['planning'], 'failed', { outcome: reason, finished: true });
      const detail = plainSaid(reason);
      await audit(this.deps.db, { env: job.env, job: number, actor: 'lifeline', action: 'refused', detail });
      await this.deps.notifier.tellRequester(job, [
        `:warning: ${jobId(number)} (${describeJob(job.env, job.params)}) was not started: `,
        ...reason,
      ]);
      if (err instanceof UserError) return;
      throw err;
    }
    const nothingToChange = typeof planned === 'string' ? undefined : planned.nothingToChange;
    // Nothing to change needs nobody's approval: the job ends with its plan.
    const needsApproval = job.needsApproval && nothingToChange === undefined;
    const expiresAt = needsApproval
      ? new Date(Date.now() + this.deps.file.approvals.expire_minutes * 60_000)
      : undefined;
    const next = nothingToChange !== undefined ? 'succeeded' : needsApproval ? 'awaiting_approval' : 'queued';
    const saved = await store.savePlan(this.deps.db, number, {
      plan: typeof planned === 'string' ? planned : planned.nothingToChange,
      stepState: open.state,
      next,
      needsApproval,
      expiresAt,
      outcome: nothingToChange === undefined ? undefined : [nothingToChange],
    });
    // Another trigger planned it meanwhile (its plan, maybe already approved, stands), or it was cancelled.
    if (!saved) return;
    await audit(this.deps.db, {
      env: job.env,
      job: number,
      actor: 'lifeline',
      action: 'planned',
      detail: saved.plan ?? '',
    });
    if (nothingToChange !== undefined) {
      await audit(this.deps.db, {
        env: job.env,
        job: number,
        actor: 'lifeline',
        action: 'succeeded',
        detail: nothingToChange,
      });
    }
    // A scheduled backup or drill says nothing until it has a result (one quiet line, or a loud failure).
    if (!isScheduled(saved)) {
      const posted = await this.deps.notifier.postPlan(saved, this.deps.approvers(saved));
      if (posted) await store.setApprovalMessage(this.deps.db, number, posted.channel, posted.ts);
    }
    if (next === 'awaiting_approval' && expiresAt) await this.deps.queue.expireAt(number, expiresAt);
    else if (next === 'queued') await this.deps.queue.run(number);
  }

  /**
   * Re-adds the trigger of every unfinished job. Safe to repeat anywhere: plans and expiries check the job's state,
   * and a run trigger for a job another worker is running finds its lease taken and returns.
   */
  async reconcile(): Promise<number> {
    const jobs = await store.jobsToReconcile(this.deps.db);
    for (const job of jobs) {
      if (job.state === 'planning') await this.deps.queue.plan(job.number);
      else if (job.state === 'awaiting_approval' && job.expiresAt) {
        await this.deps.queue.expireAt(job.number, job.expiresAt);
      } else if (job.state === 'queued' || job.state === 'running') await this.deps.queue.run(job.number);
    }
    return jobs.length;
  }

  /** Runs (or resumes) an approved job, if no other worker holds its lease. */
  async run(number: number): Promise<void> {
    if (this.stopping) return;
    const { db, log, leaseMs } = this.deps;
    const lease = await store.takeLease(db, number, `${this.workerId}/${randomUUID()}`, leaseMs);
    if (!lease) {
      log.info({ job: jobId(number) }, 'job is finished, or another worker holds its lease');
      return;
    }
    const leaseLost = new AbortController();
    const renew = () => store.renewLease(db, lease, leaseMs);
    const keeper = new LeaseKeeper(lease, renew, jobId(number), leaseMs, log, {
      lost: (why) => {
        log.warn({ job: jobId(number), why }, "lost the job's lease: stopping it; another worker takes it over");
        const stopped = new StepStopped('lease', `this worker lost the job's lease (${why})`);
        leaseLost.abort(stopped);
        run.step?.controller.abort(stopped);
      },
      cancelled: (by) => {
        if (run.cancelledBy !== undefined) return;
        run.cancelledBy = by;
        if (run.step?.definition.interruptible) {
          run.step.controller.abort(new StepStopped('cancel', `cancelled by ${by}`));
        }
      },
    });
    const run: ActiveRun = { keeper, leaseLost, step: undefined, cancelledBy: undefined };
    this.active.add(run);
    keeper.start();
    let release = false;
    try {
      release = await this.runLeased(run, number);
    } catch (err) {
      if (!(err instanceof store.LeaseLostError) && !keeper.lost) throw err;
      log.warn({ job: jobId(number) }, "stopped the job: its lease is another worker's now");
    } finally {
      keeper.stop();
      this.active.delete(run);
      // Kept on an unexpected error: the job is retried once the lease runs out, not in a tight loop.
      if (release && !keeper.lost) {
        await store.releaseLease(db, lease).catch((err: Error) => {
          log.warn({ job: jobId(number), err: err.message }, 'could not give up the lease; it runs out by itself');
        });
      }
    }
  }

  /** The steps of a leased job; true when the job ended or was handed back (its lease may be given up). */
  private async runLeased(run: ActiveRun, number: number): Promise<boolean> {
    const { db } = this.deps;
    const job = await this.current(number);
    const env = this.env(job);
    const kind = this.deps.kinds[job.kind];
    const definitions = kind.stepList(job, env);
    let records = await store.steps(db, number);
    const progress = new ThrottledProgress(async (running) => {
      if (isScheduled(job) || run.keeper.lost) return;
      const latest = await this.current(number);
      const posted = await this.deps.notifier.progress(latest, await store.steps(db, number), running);
      if (!latest.progress) {
        await this.write(run, (tx) => store.setProgressMessage(tx, number, posted.channel, posted.ts));
      }
    }, this.deps.log);
    const startedAt = job.startedAt ?? new Date();
    let open: OpenJob;
    try {
      open = kind.open(job, env, resumesAt(definitions, records));
      recordedElsewhere(definitions, records);
    } catch (err) {
      if (!(err instanceof StateMismatchError || err instanceof StepMismatchError)) throw err;
      await this.cannotResume(run, { job, open: undefined, progress, startedAt }, err.message);
      return true;
    }
    let currentStep = '';
    const note = (detail: string): void => progress.update(`${currentStep}: ${detail}`);
    const done: Finishing = { job, open, progress, startedAt };

    for (const [index, step] of definitions.entries()) {
      const record = records.find((r) => r.index === index);
      if (record?.state === 'succeeded') continue;
      if (record?.state === 'failed') {
        // The worker that failed this step died before the job ended: finish its failure handling (it is safe to
        // repeat: it looks at what is there) and fail the job.
        await this.fail(run, done, step, record.detail.length > 0 ? record.detail : ['it failed']);
        return true;
      }
      if (record?.state === 'running' && step.destructive) {
        const reason = `the worker running it stopped inside it, and a step that changes things is never run twice`;
        await this.failStep(run, done, index, step, reason, false);
        return true;
      }
      if (this.stopping) return true;
      const cancelledBy = run.cancelledBy ?? (await this.current(number)).cancelRequestedBy;
      if (cancelledBy) {
        await this.cancelled(run, done, step, cancelledBy, `before "${step.name}"`);
        return true;
      }
      await this.write(run, async (tx) => {
        await store.startStep(tx, number, {
          index,
          step: step.id,
          name: step.name,
          destructive: step.destructive,
          interruptible: step.interruptible,
        });
        await audit(tx, { env: job.env, job: number, actor: 'lifeline', action: 'step_started', detail: step.name });
      });
      currentStep = step.name;
      progress.update(step.name);
      const outcome = await this.runStep(run, open, step, note);
      if (run.keeper.lost) return false;
      if (outcome.ok) {
        await this.write(run, async (tx) => {
          await store.finishStep(tx, number, index, 'succeeded', [outcome.detail]);
          await store.saveStepState(tx, number, open.state);
          await audit(tx, {
            env: job.env,
            job: number,
            actor: 'lifeline',
            action: 'step_succeeded',
            detail: `${step.name}: ${outcome.detail}`,
          });
        });
        records = await store.steps(db, number);
        progress.update(undefined);
        continue;
      }
      const reason = outcome.stopped?.cause === 'deadline' ? outcome.stopped.message : messageOf(outcome.error);
      if (this.stopping && outcome.stopped?.cause !== 'deadline') {
        await this.handBack(run, job, index, step, outcome.error);
        return true;
      }
      if (outcome.stopped?.cause === 'cancel' && run.cancelledBy) {
        const by = run.cancelledBy;
        await this.write(run, async (tx) => {
          const interrupted = said`interrupted: cancelled by ${person(by)} before it changed anything`;
          await store.finishStep(tx, number, index, 'failed', interrupted);
          await store.saveStepState(tx, number, open.state);
          await audit(tx, {
            env: job.env,
            job: number,
            actor: 'lifeline',
            action: 'step_interrupted',
            detail: plainSaid(said`${step.name}: cancelled by ${person(by)}`),
          });
        });
        await this.cancelled(run, done, step, by, `during "${step.name}", which was interrupted`);
        return true;
      }
      await this.failStep(run, done, index, step, reason, true);
      return true;
    }
    await this.finish(run, done, true, undefined);
    return true;
  }

  /**
   * The job's stored state or steps do not fit its kind as this version runs it: nothing more is run, and nothing
   * put back (the kind cannot read what there would be to put back); the job fails saying why, once.
   */
  private async cannotResume(run: ActiveRun, done: Finishing, why: string): Promise<void> {
    const { job } = done;
    const outcome = `could not resume: ${why}; nothing more was run, check the job's target by hand`;
    await this.write(run, async (tx) => {
      await store.transition(tx, job.number, ['running'], 'failed', { outcome: [outcome], finished: true });
      await audit(tx, { env: job.env, job: job.number, actor: 'lifeline', action: 'failed', detail: outcome });
    });
    await this.report(done, false, [outcome]);
  }

  /** Runs one step under its deadline; the step's signal also fires on shutdown, a lost lease and (if it may be
   * interrupted) a cancel. */
  private async runStep(
    run: ActiveRun,
    open: OpenJob,
    step: NamedStep,
    note: (detail: string) => void,
  ): Promise<StepOutcome> {
    const controller = new AbortController();
    run.step = { controller, definition: step };
    if (run.keeper.lost) controller.abort(new StepStopped('lease', "this worker lost the job's lease"));
    if (this.stopping) controller.abort(new StepStopped('shutdown', 'Lifeline is shutting down'));
    if (step.interruptible && run.cancelledBy) {
      controller.abort(new StepStopped('cancel', `cancelled by ${run.cancelledBy}`));
    }
    const deadlineMs = open.deadline(step.id, this.deps.stepDeadlineMs);
    const deadline = setTimeout(() => {
      controller.abort(
        new StepStopped('deadline', `it passed its deadline of ${formatDuration(deadlineMs)} and was stopped`),
      );
    }, deadlineMs);
    try {
      return { ok: true, detail: await open.run(step.id, controller.signal, note) };
    } catch (error) {
      const reason: unknown = controller.signal.reason;
      return {
        ok: false,
        error,
        stopped: controller.signal.aborted && reason instanceof StepStopped ? reason : undefined,
      };
    } finally {
      clearTimeout(deadline);
      run.step = undefined;
    }
  }

  /**
   * Shutdown stopped a step: a destructive one that says it changed nothing (AbortError: the swap rolled back) is
   * forgotten and runs anew on the next worker; any other stays recorded as running (repeated if safe, put back if
   * not).
   */
  private async handBack(
    run: ActiveRun,
    job: RecoveryJob,
    index: number,
    step: NamedStep,
    error: unknown,
  ): Promise<void> {
    const untouched = step.destructive && error instanceof AbortError;
    const what =
      untouched || !step.destructive
        ? 'handed back; the next worker runs it again'
        : 'handed back while it ran; the next worker puts things back';
    await this.write(run, async (tx) => {
      if (untouched) await store.forgetStep(tx, job.number, index);
      await audit(tx, {
        env: job.env,
        job: job.number,
        actor: 'lifeline',
        action: 'step_interrupted',
        detail: `${step.name}: ${what}`,
      });
    });
    this.deps.log.info({ job: jobId(job.number), step: step.name }, `step interrupted by shutdown: ${what}`);
  }

  /** Records the step as failed (with the state it left, when it ran here), then fails the job. */
  private async failStep(
    run: ActiveRun,
    done: Finishing,
    index: number,
    step: NamedStep,
    reason: string,
    ranHere: boolean,
  ): Promise<void> {
    const { job, open } = done;
    await this.write(run, async (tx) => {
      await store.finishStep(tx, job.number, index, 'failed', [reason]);
      if (ranHere && open) await store.saveStepState(tx, job.number, open.state);
      const detail = `${step.name}: ${reason}`;
      await audit(tx, { env: job.env, job: job.number, actor: 'lifeline', action: 'step_failed', detail });
    });
    await this.fail(run, done, step, [reason]);
  }

  /** The kind's failure handling, then the job fails saying what it did. */
  private async fail(run: ActiveRun, done: Finishing, step: NamedStep, reason: Said): Promise<void> {
    const recovery = await this.failureHandling(run, done, step, 'failed');
    await this.finish(run, done, false, [`"${step.name}" failed: `, ...reason, recovery ? `. ${recovery}` : '']);
  }

  /** A cancel took effect (`when`: before a step, or during an interrupted one): clean up, then cancel the job. */
  private async cancelled(run: ActiveRun, done: Finishing, step: NamedStep, by: string, when: string): Promise<void> {
    const { job, open } = done;
    const cleanup = await this.failureHandling(run, done, step, 'cancelled');
    await this.write(run, async (tx) => {
      if (open) await store.saveStepState(tx, job.number, open.state);
      await store.transition(tx, job.number, ['running'], 'cancelled', {
        outcome: said`cancelled by ${person(by)} ${when}`,
        finished: true,
      });
      await audit(tx, { env: job.env, job: job.number, actor: by, action: 'cancelled', detail: when });
    });
    const headline = said`Cancelled by ${person(by)} ${when}; nothing after it ran.${cleanup ? ` ${cleanup}` : ''}`;
    await this.report(done, false, headline);
  }

  /** Runs the kind's onFailure with a signal that fires only if the lease is lost. */
  private async failureHandling(
    run: ActiveRun,
    done: Finishing,
    step: NamedStep,
    reason: StopReason,
  ): Promise<string | undefined> {
    if (!done.open) return undefined;
    try {
      return await done.open.onFailure(step.id, reason, run.leaseLost.signal);
    } catch (err) {
      if (run.keeper.lost) throw new store.LeaseLostError(run.keeper.lease);
      return `putting things back failed too: ${messageOf(err)}`;
    }
  }

  private async finish(run: ActiveRun, done: Finishing, succeeded: boolean, failure: Said | undefined): Promise<void> {
    const { job, open } = done;
    const outcome = failure ?? (open ? [open.summarise(succeeded).headline] : []);
    await this.write(run, async (tx) => {
      if (open) await store.saveStepState(tx, job.number, open.state);
      await store.transition(tx, job.number, ['running'], succeeded ? 'succeeded' : 'failed', {
        outcome,
        finished: true,
      });
      await audit(tx, {
        env: job.env,
        job: job.number,
        actor: 'lifeline',
        action: succeeded ? 'succeeded' : 'failed',
        detail: plainSaid(outcome),
      });
    });
    await this.report(done, succeeded, failure);
  }

  /** The progress message's last update (its final state, within the once-a-second budget), then the result. */
  private async report(done: Finishing, succeeded: boolean, failure: Said | undefined): Promise<void> {
    const { open, progress, startedAt } = done;
    progress.update(undefined);
    await progress.settle();
    const job = await this.current(done.job.number);
    const stepRecords = await store.steps(this.deps.db, job.number);
    const summary = open?.summarise(succeeded) ?? { headline: '', verified: [] };
    // A cancel during a step that cannot be interrupted, when it was the last one, could not stop anything.
    const lateCancel =
      succeeded && job.cancelRequestedBy
        ? said` (the cancel by ${person(job.cancelRequestedBy)} came during the last step, too late to stop it)`
        : [];
    const headline = failure ?? [summary.headline, ...lateCancel];
    const { verified } = summary;
    try {
      await this.deps.notifier.result(job, stepRecords, {
        succeeded,
        headline,
        verified,
        totalMs: Date.now() - startedAt.getTime(),
        ...(succeeded && summary.incomplete ? { incomplete: true } : {}),
      });
    } catch (err) {
      this.deps.log.error({ job: jobId(job.number), err: (err as Error).message }, 'job result could not be posted');
    }
    // The plan message is where people look first: it says how the job ended, not "approved, queued" forever.
    await this.deps.notifier
      .updatePlan(job, this.deps.approvers(job))
      .catch((err: Error) =>
        this.deps.log.warn({ job: jobId(job.number), err: err.message }, 'plan message update failed'),
      );
  }

  /**
   * A write fenced on the lease. While PostgreSQL does not answer it is tried again for as long as the lease lasts:
   * a step that finished is worth recording rather than repeating (or putting back) on another worker.
   */
  private async write<T>(run: ActiveRun, work: (tx: DbClient) => Promise<T>): Promise<T> {
    return writeWhileLeased(
      run.keeper,
      () => new store.LeaseLostError(run.keeper.lease),
      () => store.fenced(this.deps.db, run.keeper.lease, work),
      (err) =>
        this.deps.log.warn(
          { job: jobId(run.keeper.lease.job), err: messageOf(err) },
          'recording the job failed; trying again while the lease lasts',
        ),
    );
  }

  private async current(number: number): Promise<RecoveryJob> {
    return (await store.getJob(this.deps.db, number))!;
  }

  private env(job: RecoveryJob): EnvironmentConfig {
    const env = this.deps.file.environments[job.env];
    if (!env) throw new UserError('bad_command', `environment ${job.env} is no longer configured`);
    return env;
  }
}

interface Finishing {
  readonly job: RecoveryJob;
  /** Undefined when the job's stored state could not be read back. */
  readonly open: OpenJob | undefined;
  readonly progress: ThrottledProgress;
  readonly startedAt: Date;
}

/** A job's recorded steps do not line up with the steps its kind runs now. */
class StepMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepMismatchError';
  }
}

/** The name of the first step not yet done: where a resumed job goes on, for what it says when it cannot. */
function resumesAt(steps: readonly NamedStep[], records: readonly StepRecord[]): string {
  const next = steps.find((_, index) => records.find((r) => r.index === index)?.state !== 'succeeded');
  return next?.name ?? 'the end';
}

/** Throws unless every recorded step is, by its id, the step the kind runs at its place now. */
function recordedElsewhere(steps: readonly NamedStep[], records: readonly StepRecord[]): void {
  for (const record of records) {
    const expected = steps[record.index];
    if (record.step === undefined || expected?.id !== record.step) {
      throw new StepMismatchError(
        `its step ${record.index + 1} was recorded as "${record.name}", which this version of Lifeline does not run ` +
          `there${expected ? ` (it runs "${expected.name}")` : ''}`,
      );
    }
  }
}

export type { StepRecord };
