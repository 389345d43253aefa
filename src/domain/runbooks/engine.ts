// Carries runbook runs out on the workers: each step in order, from the first one not finished, with live progress.
// A run is fenced to one worker by a lease on its row (as recovery jobs are: see ../recovery/runner.ts), and every
// write is fenced on that lease. The run stops waiting (and gives its lease up in the same transaction) whenever a
// person has to act: an approval before a step (approval: each_step), Done on a `confirm`, Retry/Skip/Abort after a
// failure; the click sets it going again. A step that was running when its worker died runs again: its kind finds the
// change it recorded in its state and waits on it instead of making it again. A finished step never runs again.
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FileConfig } from '../../shared/config.js';
import type { Db, DbClient } from '../../shared/db/pool.js';
import { messageOf } from '../../shared/errors.js';
import { formatDuration } from '../../shared/format.js';
import type { Logger } from '../../shared/log.js';
import { codeSpan, person, said, type Said } from '../../shared/text.js';
import { audit } from '../audit/store.js';
import { LeaseKeeper, writeWhileLeased } from '../recovery/lease.js';
import { ThrottledProgress } from '../recovery/progress.js';
import { StepStopped, type StopCause } from '../recovery/runner.js';
import { approversOf } from '../recovery/service.js';
import { fillTemplates } from './definitions.js';
import { runId, type Run, type RunStep } from './model.js';
import type { RunbookNotifier, RunbookQueue } from './notifier.js';
import type { BoundContext, RunInfo, StepKind, StepResult } from './step-kind.js';
import type { StepDeps } from './steps/index.js';
import * as store from './store.js';

export interface EngineDeps {
  readonly db: Db;
  readonly file: Pick<FileConfig, 'approvals' | 'roles'>;
  readonly kinds: readonly StepKind<StepDeps>[];
  readonly stepDeps: StepDeps;
  readonly notifier: RunbookNotifier;
  readonly queue: RunbookQueue;
  readonly log: Logger;
  /** LIFELINE_JOB_LEASE_SECONDS: how soon another worker takes a run over whose worker died. */
  readonly leaseMs: number;
  /** A step's deadline unless its kind asks for more (LIFELINE_STEP_DEADLINE_MINUTES). */
  readonly stepDeadlineMs: number;
}

interface Active {
  readonly number: number;
  readonly keeper: LeaseKeeper<store.RunLease>;
  readonly progress: ThrottledProgress;
  step: AbortController | undefined;
}

type Outcome =
  | { readonly ok: true; readonly result: StepResult<string>; readonly state: object }
  | { readonly ok: false; readonly reason: string; readonly state: object | undefined; readonly cause?: StopCause };

export class RunbookEngine {
  private readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly kinds: ReadonlyMap<string, StepKind<StepDeps>>;
  private readonly active = new Set<Active>();
  /** Each run's last showProgress, settled: the next one waits for it. */
  private readonly showing = new Map<number, Promise<void>>();
  private stopping = false;

  constructor(private readonly deps: EngineDeps) {
    this.kinds = new Map(deps.kinds.map((kind) => [kind.id, kind]));
  }

  /** On SIGTERM: the running steps stop and their runs are handed back (the step stays running, to run again). */
  stop(): void {
    this.stopping = true;
    for (const run of this.active) run.step?.abort(new StepStopped('shutdown', 'Lifeline is shutting down'));
  }

  /** Re-adds the trigger of every run that waits on a worker, and the expiry of every approval it waits for. */
  async reconcile(): Promise<number> {
    const runs = await store.runsToReconcile(this.deps.db);
    for (const run of runs) {
      if (run.state === 'awaiting_approval') {
        if (run.expiresAt) await this.deps.queue.expireAt(run.number, run.expiresAt);
      } else await this.deps.queue.run(run.number);
    }
    return runs.length;
  }

  /** Carries a run on, if it waits on a worker and no other worker holds its lease. */
  async run(number: number): Promise<void> {
    if (this.stopping) return;
    const { db, log, leaseMs } = this.deps;
    const lease = await store.takeLease(db, number, `${this.workerId}/${randomUUID()}`, leaseMs);
    if (!lease) return;
    const keeper = new LeaseKeeper(lease, () => store.renewLease(db, lease, leaseMs), runId(number), leaseMs, log, {
      lost: (why) => {
        log.warn({ run: runId(number), why }, "lost the run's lease: stopping; another worker takes it over");
        active.step?.abort(new StepStopped('lease', `this worker lost the run's lease (${why})`));
      },
      cancelled: () => undefined,
    });
    const progress = new ThrottledProgress(async (live) => {
      if (!keeper.lost) await this.showProgress(number, live);
    }, log);
    const active: Active = { number, keeper, progress, step: undefined };
    this.active.add(active);
    keeper.start();
    try {
      await this.carryOn(active);
    } catch (err) {
      if (!(err instanceof store.RunLeaseLostError) && !keeper.lost) throw err;
      log.warn({ run: runId(number) }, "stopped the run: its lease is another worker's now");
    } finally {
      keeper.stop();
      this.active.delete(active);
      await progress.settle();
    }
  }

  /**
   * The run's message as it is now (posted the first time). One at a time per run: the service's refresh after a
   * click and the worker's progress would otherwise race, and a send that read the run earlier could reach Slack
   * last and leave the message showing a state (and buttons) long gone, or post the message twice.
   */
  showProgress(number: number, live?: string): Promise<void> {
    const next = (this.showing.get(number) ?? Promise.resolve()).then(() => this.sendProgress(number, live));
    const settled = next.catch(() => undefined);
    this.showing.set(number, settled);
    void settled.then(() => {
      if (this.showing.get(number) === settled) this.showing.delete(number);
    });
    return next;
  }

  private async sendProgress(number: number, live: string | undefined): Promise<void> {
    const run = await store.getRun(this.deps.db, number);
    if (!run) return;
    const steps = await store.steps(this.deps.db, number);
    const posted = await this.deps.notifier.progress(run, steps, this.approvers(run), live);
    if (!run.progress) await store.setProgressMessage(this.deps.db, number, posted.channel, posted.ts);
  }

  approvers(run: Pick<Run, 'requestedBy'>): string[] {
    return approversOf(this.deps.file, run);
  }

  private async carryOn(active: Active): Promise<void> {
    const { db } = this.deps;
    const run = (await store.getRun(db, active.number))!;
    if (run.state === 'aborting') return this.abort(active, run);
    if (run.dryRun) return this.dryRun(active, run);
    for (;;) {
      const steps = await store.steps(db, run.number);
      const step = steps.find((s) => s.state !== 'succeeded' && s.state !== 'skipped');
      if (!step) return this.succeed(active, run);
      if (this.stopping) return this.handBack(active);
      // Waiting for a click (an earlier worker set it so and died before it let go): the click sets it going.
      if (step.state === 'awaiting_done' || step.state === 'awaiting_approval') return this.handBack(active);
      if (step.state === 'failed') return this.stopAt(active, run, step, step.detail);
      const kind = this.kinds.get(step.kind);
      if (!kind) {
        const reason = `this version of Lifeline has no step kind "${step.kind}"`;
        await this.write(active, (tx) =>
          store.updateStep(tx, run.number, step.index, { state: 'failed', detail: reason }),
        );
        return this.stopAt(active, run, step, reason);
      }
      const current = (await store.getRun(db, run.number))!;
      if (step.state === 'pending' && kind.byPerson) return this.waitFor(active, current, step, 'awaiting_done');
      if (step.state === 'pending' && current.approval === 'each_step' && !approvedFor(current, step.index)) {
        return this.waitFor(active, current, step, 'awaiting_approval');
      }
      await this.write(active, async (tx) => {
        // A person's step began when it started waiting for Done; Done set it running for its check.
        await store.updateStep(tx, run.number, step.index, { state: 'running', newAttempt: !kind.byPerson });
        const again = step.state === 'running' && !kind.byPerson ? ' (again: its worker stopped inside it)' : '';
        await audit(tx, { run: run.number, actor: 'lifeline', action: 'step_started', detail: `${step.id}${again}` });
      });
      active.progress.update(undefined);
      const outcome = await this.runStep(active, current, steps, step, kind);
      if (active.keeper.lost) return;
      if (!outcome.ok && outcome.cause === 'shutdown') {
        await this.write(active, async (tx) => {
          if (outcome.state) await store.updateStep(tx, run.number, step.index, { kindState: outcome.state });
          const detail = `${step.id}: handed back on shutdown; the next worker runs it again`;
          await audit(tx, { run: run.number, actor: 'lifeline', action: 'step_interrupted', detail });
          await this.letGo(active, tx);
        });
        return;
      }
      if (!outcome.ok) {
        await this.write(active, async (tx) => {
          await store.updateStep(tx, run.number, step.index, {
            state: 'failed',
            finished: true,
            detail: outcome.reason,
            ...(outcome.state ? { kindState: outcome.state } : {}),
          });
          const detail = `${step.id}: ${outcome.reason}`;
          await audit(tx, { run: run.number, actor: 'lifeline', action: 'step_failed', detail });
        });
        return this.stopAt(active, current, step, outcome.reason);
      }
      const { result, state } = outcome;
      await this.write(active, async (tx) => {
        await store.updateStep(tx, run.number, step.index, {
          state: 'succeeded',
          finished: true,
          detail: result.detail,
          kindState: state,
          outputs: result.outputs,
          ...(result.dataAgeMs !== undefined ? { dataAgeMs: result.dataAgeMs } : {}),
        });
        if (kind.provesRecovery) await store.transition(tx, run.number, ['running'], 'running', { recovered: true });
        const detail = `${step.id}: ${result.detail}`;
        await audit(tx, { run: run.number, actor: 'lifeline', action: 'step_succeeded', detail });
      });
      active.progress.update(undefined);
    }
  }

  /** Runs one step's run and check under its deadline; the signal also fires on shutdown and a lost lease. */
  private async runStep(
    active: Active,
    run: Run,
    steps: readonly RunStep[],
    step: RunStep,
    kind: StepKind<StepDeps>,
  ): Promise<Outcome> {
    const controller = new AbortController();
    active.step = controller;
    if (this.stopping) controller.abort(new StepStopped('shutdown', 'Lifeline is shutting down'));
    let state: object | undefined;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    try {
      const params = filledParams(kind, step, steps);
      const open = kind.open(step.kindState);
      state = open.state;
      const deadlineMs = Math.max(kind.deadlineMs(params) ?? 0, this.deps.stepDeadlineMs);
      deadline = setTimeout(() => {
        const why = `it passed its deadline of ${formatDuration(deadlineMs)} and was stopped`;
        controller.abort(new StepStopped('deadline', why));
      }, deadlineMs);
      const ctx = this.context(active, run, step, open, params, controller.signal);
      if (kind.byPerson) return { ok: true, result: await open.check(ctx, this.deps.stepDeps), state };
      await open.run(ctx, this.deps.stepDeps);
      return { ok: true, result: await open.check(ctx, this.deps.stepDeps), state };
    } catch (err) {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof StepStopped) {
        return { ok: false, reason: reason.message, state, cause: reason.cause };
      }
      return { ok: false, reason: messageOf(err), state };
    } finally {
      clearTimeout(deadline);
      active.step = undefined;
    }
  }

  /** What a step's run, check and undo get: recordChange stores its state and audits the change, fenced. */
  private context(
    active: Active,
    run: Run,
    step: RunStep,
    open: { readonly state: object },
    params: unknown,
    signal: AbortSignal,
  ): BoundContext {
    return {
      params,
      run: runInfo(run),
      signal,
      recordChange: (what) =>
        this.write(active, async (tx) => {
          await store.updateStep(tx, run.number, step.index, { kindState: open.state });
          await audit(tx, { run: run.number, actor: 'lifeline', action: 'change', detail: `${step.id}: ${what}` });
        }),
      note: (detail) => active.progress.update(`${step.id}: ${detail}`),
    };
  }

  /** The run waits for a person: Done on a `confirm`, or an approval of the next step. */
  private async waitFor(
    active: Active,
    run: Run,
    step: RunStep,
    what: 'awaiting_done' | 'awaiting_approval',
  ): Promise<void> {
    const expiresAt =
      what === 'awaiting_approval'
        ? new Date(Date.now() + this.deps.file.approvals.expire_minutes * 60_000)
        : undefined;
    await this.write(active, async (tx) => {
      await store.updateStep(tx, run.number, step.index, { state: what, newAttempt: what === 'awaiting_done' }, [
        'pending',
      ]);
      if (expiresAt) await store.transition(tx, run.number, ['running'], 'awaiting_approval', { expiresAt });
      await this.letGo(active, tx);
    });
    if (expiresAt) await this.deps.queue.expireAt(run.number, expiresAt);
    active.progress.update(undefined);
    const kind = this.kinds.get(step.kind);
    const line = kind ? kind.describe(step.params) : step.kind;
    await this.tell(
      run,
      what === 'awaiting_done'
        ? said`${runId(run.number)} waits for step ${step.id} to be done by hand: ${line}. Click Done when it is.`
        : said`${runId(run.number)} waits for an approval of step ${step.id}: ${line}.`,
    );
  }

  /** A failed step stops the run: it waits for Retry, Skip or Abort by an approver. */
  private async stopAt(active: Active, run: Run, step: RunStep, reason: string): Promise<void> {
    await this.write(active, async (tx) => {
      await store.transition(tx, run.number, ['running'], 'stopped');
      await this.letGo(active, tx);
    });
    active.progress.update(undefined);
    await this.tell(
      run,
      said`${runId(run.number)} stopped: step ${step.id} failed: ${reason}. An approver may Retry it, Skip it or Abort the run.`,
    );
  }

  private async succeed(active: Active, run: Run): Promise<void> {
    const ended = await this.write(active, async (tx) => {
      const done = await store.transition(tx, run.number, ['running'], 'succeeded', {
        finished: true,
        outcome: ['every step done'],
      });
      await audit(tx, { run: run.number, actor: 'lifeline', action: 'succeeded', detail: run.runbook });
      await this.letGo(active, tx);
      return done;
    });
    active.progress.update(undefined);
    if (ended)
      await this.tell(
        ended,
        said`${runId(run.number)} succeeded. ${codeSpan(`/dr run report ${runId(run.number)}`)} gives its report.`,
      );
  }

  /** Abort: every step that ran and can put back what it changed does so, last first; then the run ends aborted. */
  private async abort(active: Active, run: Run): Promise<void> {
    const steps = await store.steps(this.deps.db, run.number);
    const put: string[] = [];
    for (const step of [...steps].reverse()) {
      const kind = this.kinds.get(step.kind);
      if (!kind?.canUndo || step.attempts === 0 || step.undone !== undefined) continue;
      if (step.state !== 'succeeded' && step.state !== 'failed') continue;
      let putBack: string;
      try {
        const open = kind.open(step.kindState);
        const controller = new AbortController();
        active.step = controller;
        const ctx = this.context(active, run, step, open, filledParams(kind, step, steps), controller.signal);
        putBack = (await open.undo(ctx, this.deps.stepDeps)) ?? 'nothing to put back';
      } catch (err) {
        if (active.keeper.lost) return;
        putBack = `putting it back failed: ${messageOf(err)}`;
      } finally {
        active.step = undefined;
      }
      put.push(`${step.id}: ${putBack}`);
      await this.write(active, async (tx) => {
        await store.updateStep(tx, run.number, step.index, { undone: putBack });
        await audit(tx, { run: run.number, actor: 'lifeline', action: 'undone', detail: `${step.id}: ${putBack}` });
      });
    }
    const ended = await this.write(active, async (tx) => {
      const done = await store.transition(tx, run.number, ['aborting'], 'aborted', { finished: true });
      await audit(tx, { run: run.number, actor: 'lifeline', action: 'aborted', detail: put.join('; ') });
      await this.letGo(active, tx);
      return done;
    });
    active.progress.update(undefined);
    const back = put.length > 0 ? ` Put back: ${put.join('; ')}.` : ' No step had anything to put back.';
    if (ended)
      await this.tell(ended, said`${runId(run.number)} aborted by ${person(ended.decidedBy ?? 'lifeline')}.${back}`);
  }

  /** A dry run: each step's plan (read calls only), what it would do and what is missing; nothing changes. */
  private async dryRun(active: Active, run: Run): Promise<void> {
    const steps = await store.steps(this.deps.db, run.number);
    for (const step of steps) {
      if (step.state === 'succeeded' || step.state === 'failed') continue;
      const kind = this.kinds.get(step.kind);
      let does: string;
      let missing: readonly string[];
      try {
        if (!kind) throw new Error(`this version of Lifeline has no step kind "${step.kind}"`);
        const controller = new AbortController();
        active.step = controller;
        const params = plannedParams(kind, step, steps);
        ({ does, missing } = await kind.plan(
          { params, run: runInfo(run), signal: controller.signal },
          this.deps.stepDeps,
        ));
      } catch (err) {
        if (active.keeper.lost) return;
        does = `could not be planned`;
        missing = [`its read calls failed: ${messageOf(err)}`];
      } finally {
        active.step = undefined;
      }
      await this.write(active, async (tx) => {
        await store.updateStep(tx, run.number, step.index, {
          state: missing.length === 0 ? 'succeeded' : 'failed',
          newAttempt: true,
          finished: true,
          detail: does,
          missing,
        });
      });
      active.progress.update(undefined);
    }
    const after = await store.steps(this.deps.db, run.number);
    const gaps = after.flatMap((s) => s.missing.map((m) => `${s.id}: ${m}`));
    const ended = await this.write(active, async (tx) => {
      const outcome = gaps.length === 0 ? ['nothing missing'] : [`${gaps.length} gap(s): ${gaps.join('; ')}`];
      const done = await store.transition(tx, run.number, ['running'], gaps.length === 0 ? 'succeeded' : 'failed', {
        finished: true,
        outcome,
      });
      await audit(tx, { run: run.number, actor: 'lifeline', action: 'dry_run', detail: outcome[0] });
      await this.letGo(active, tx);
      return done;
    });
    active.progress.update(undefined);
    if (!ended) return;
    if (gaps.length > 0) {
      await this.deps.notifier.alarm(ended, after).catch((err: Error) => {
        this.deps.log.error({ run: runId(run.number), err: err.message }, 'dry run alarm could not be posted');
      });
    } else {
      await this.tell(ended, said`Dry run ${runId(run.number)} of ${run.runbook}: every step has what it needs.`);
    }
  }

  /** Shutdown (or a wait an earlier worker set up): the lease goes now, so the next trigger is taken at once. */
  private async handBack(active: Active): Promise<void> {
    await this.write(active, (tx) => this.letGo(active, tx));
  }

  /**
   * Gives the run's lease up in `tx`. The heartbeat stops first: a renewal racing the release would read as a lost
   * lease, and that silences the run's last progress update (the message would keep showing the step running).
   */
  private letGo(active: Active, tx: DbClient): Promise<void> {
    active.keeper.stop();
    return store.releaseLease(tx, active.keeper.lease);
  }

  private async tell(run: Run, sentence: Said): Promise<void> {
    await this.deps.notifier.tell(run, sentence).catch((err: Error) => {
      this.deps.log.warn({ run: runId(run.number), err: err.message }, 'run message could not be posted');
    });
  }

  private async write<T>(active: Active, work: (tx: DbClient) => Promise<T>): Promise<T> {
    return writeWhileLeased(
      active.keeper,
      () => new store.RunLeaseLostError(active.keeper.lease),
      () => store.fenced(this.deps.db, active.keeper.lease, work),
      (err) =>
        this.deps.log.warn(
          { run: runId(active.number), err: messageOf(err) },
          'recording the run failed; trying again while the lease lasts',
        ),
    );
  }
}

function runInfo(run: Run): RunInfo {
  return {
    number: run.number,
    runbook: run.runbook,
    requestedBy: run.requestedBy,
    channel: run.requestedIn,
    dryRun: run.dryRun,
  };
}

function approvedFor(run: Run, index: number): boolean {
  return run.approvals.some((a) => a.step === index);
}

/**
 * The step's params with the earlier steps' outputs filled in, checked against its kind again. An output of a
 * skipped step (or one its step did not give) fails the step, naming it.
 */
function filledParams(kind: StepKind<StepDeps>, step: RunStep, steps: readonly RunStep[]): unknown {
  const outputs = new Map(steps.flatMap((s) => (s.state === 'succeeded' && s.outputs ? [[s.id, s.outputs]] : [])));
  const unknown: string[] = [];
  const filled = fillTemplates(step.params, outputs, (stepId, output) => {
    const source = steps.find((s) => s.id === stepId);
    unknown.push(
      source?.state === 'skipped'
        ? `it uses the ${output} of step ${stepId}, which was skipped`
        : `it uses the ${output} of step ${stepId}, which that step did not give`,
    );
    return '';
  });
  if (unknown.length > 0) throw new Error(unknown.join('; '));
  const parsed = kind.parseParams(filled);
  if (!parsed.ok) {
    const issues = parsed.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'params'}: ${i.message}`);
    throw new Error(`its params with the earlier steps' outputs filled in do not fit ${kind.id}: ${issues.join('; ')}`);
  }
  return parsed.params;
}

/**
 * A dry run's params: an output not known yet reads as a placeholder ("(the endpoint of step dr_db)"). Where the
 * kind's schema wants something else there (a number), the params stay as the file holds them.
 */
function plannedParams(kind: StepKind<StepDeps>, step: RunStep, steps: readonly RunStep[]): unknown {
  const outputs = new Map(steps.flatMap((s) => (s.outputs ? [[s.id, s.outputs]] : [])));
  const filled = fillTemplates(step.params, outputs, (stepId, output) => `(the ${output} of step ${stepId})`);
  const parsed = kind.parseParams(filled);
  return parsed.ok ? parsed.params : step.params;
}
