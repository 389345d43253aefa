// Runbook runs as people drive them: request (or dry run), approve, reject, Done, Retry, Skip, Abort, and approval
// expiry. Knows nothing of Slack; the engine does the work on a worker. Every decision is a conditional update of the
// run's row (two clicks at once: one wins, the other is told), and every decision and refusal is audited.
import type { FileConfig } from '../../shared/config.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import { UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { person, said, type Said } from '../../shared/text.js';
import { isResponder, responderRoles } from '../access/permissions.js';
import { audit, type AuditAction } from '../audit/store.js';
import { approversOf } from '../recovery/service.js';
import type { Runbook } from './definitions.js';
import { runId, type Run, type RunStep } from './model.js';
import type { RunbookQueue } from './notifier.js';
import * as store from './store.js';

export interface RunbookServiceDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly runbooks: ReadonlyMap<string, Runbook>;
  readonly queue: RunbookQueue;
  /** Posts or updates the run's message as it is now. */
  readonly showProgress: (run: number) => Promise<void>;
  readonly log: Logger;
}

/** What a person may do to a run besides approving or rejecting it. */
export type RunAction = 'done' | 'retry' | 'skip' | 'abort';

export class RunbookService {
  constructor(private readonly deps: RunbookServiceDeps) {}

  runbooks(): readonly Runbook[] {
    return [...this.deps.runbooks.values()];
  }

  runbook(name: string): Runbook {
    const runbook = this.deps.runbooks.get(name);
    if (!runbook) {
      const known = [...this.deps.runbooks.keys()];
      const list = known.length > 0 ? `configured: ${known.join(', ')}` : 'none is configured';
      throw new UserError('bad_command', `There is no runbook "${name}" (${list}).`);
    }
    return runbook;
  }

  latestRuns(): Promise<Map<string, Run>> {
    return store.latestRuns(this.deps.db);
  }

  async find(number: number): Promise<{ run: Run; steps: RunStep[] }> {
    const run = await store.getRun(this.deps.db, number);
    if (!run) throw new UserError('bad_command', `There is no run ${runId(number)}.`);
    return { run, steps: await store.steps(this.deps.db, number) };
  }

  /** Records a run (responders only; one open run per runbook) and sets it going or asks for its approval. */
  async request(input: {
    runbook: string;
    dryRun: boolean;
    actor: string;
    channel: string;
    responseUrl?: string | undefined;
  }): Promise<Run> {
    const runbook = this.runbook(input.runbook);
    const what = `${input.dryRun ? 'dry-run' : 'run'} the runbook ${runbook.name}`;
    if (!isResponder(this.deps.file, input.actor)) {
      const roles = responderRoles(this.deps.file).join(', ');
      const refusal = new UserError('not_permitted', `Only responders (${roles}) may ${what}.`);
      await audit(this.deps.db, { actor: input.actor, action: 'not_permitted', detail: refusal.message });
      throw refusal;
    }
    // A dry run needs nobody; with each_step the engine asks before each step as it gets there.
    const waits = !input.dryRun && runbook.approval === 'once';
    const expiresAt = waits ? new Date(Date.now() + this.deps.file.approvals.expire_minutes * 60_000) : undefined;
    let run: Run;
    try {
      run = await inTransaction(this.deps.db, async (tx) => {
        const created = await store.insertRun(tx, {
          runbook: runbook.name,
          version: runbook.version,
          title: runbook.title,
          approval: runbook.approval,
          requestedBy: input.actor,
          requestedIn: input.channel,
          responseUrl: input.responseUrl,
          dryRun: input.dryRun,
          state: waits ? 'awaiting_approval' : 'running',
          expiresAt,
          steps: runbook.steps.map((s) => ({ index: s.index, id: s.id, kind: s.kind.id, params: s.params })),
        });
        const detail = `${runbook.name} (version ${runbook.version})${input.dryRun ? ', dry run' : ''}`;
        await audit(tx, { run: created.number, actor: input.actor, action: 'requested', detail });
        return created;
      });
    } catch (err) {
      if (err instanceof store.RunbookBusyError) {
        const holder = err.holder;
        const state = holder.state.replace('_', ' ');
        throw new UserError(
          'already_done',
          said`${runId(holder.number)} of ${runbook.name} (requested by ${person(holder.requestedBy)}) is ${state}; one run of a runbook at a time.`,
        );
      }
      throw err;
    }
    await this.refresh(run.number);
    if (expiresAt) await this.deps.queue.expireAt(run.number, expiresAt);
    else await this.deps.queue.run(run.number);
    return run;
  }

  /** Approvers only, never the requester unless allow_self_approval; the run's one approval, or the waiting step's. */
  async approve(number: number, actor: string): Promise<Run> {
    const { run, steps } = await this.decidable(number, actor, 'approve');
    const step = steps.find((s) => s.state === 'awaiting_approval');
    const approval = { by: actor, at: new Date().toISOString(), step: step?.index ?? null };
    const approved = await inTransaction(this.deps.db, async (tx) => {
      const moved = await store.transition(tx, number, ['awaiting_approval'], 'running', {
        approval,
        started: true,
        expiresAt: null,
      });
      if (!moved) return undefined;
      if (step) await store.updateStep(tx, number, step.index, { state: 'pending' }, ['awaiting_approval']);
      const detail = step ? `step ${step.id}` : `the run of ${run.runbook}`;
      await audit(tx, { run: number, actor, action: 'approved', detail });
      return moved;
    });
    if (!approved)
      return this.refuse(run, actor, 'approve', `${runId(number)} was decided a moment ago by someone else.`);
    await this.deps.queue.run(number);
    await this.refresh(number);
    return approved;
  }

  /** The requester or an approver. */
  async reject(number: number, actor: string): Promise<Run> {
    const { run, steps } = await this.decidable(number, actor, 'reject');
    const step = steps.find((s) => s.state === 'awaiting_approval');
    const rejected = await inTransaction(this.deps.db, async (tx) => {
      const moved = await store.transition(tx, number, ['awaiting_approval'], 'rejected', {
        decidedBy: actor,
        finished: true,
        outcome: said`rejected by ${person(actor)}${step ? ` before step ${step.id}` : ''}`,
      });
      if (moved) await audit(tx, { run: number, actor, action: 'rejected', detail: step ? `step ${step.id}` : '' });
      return moved;
    });
    if (!rejected)
      return this.refuse(run, actor, 'reject', `${runId(number)} was decided a moment ago by someone else.`);
    await this.refresh(number);
    return rejected;
  }

  /**
   * Done (the requester or an approver): the `confirm` step waiting for it is done. Retry, Skip, Abort (approvers):
   * what to do about a failed step.
   */
  async act(number: number, actor: string, action: RunAction): Promise<Run> {
    const { run, steps } = await this.find(number);
    const approver = this.approverSet().has(actor);
    const id = runId(number);
    if (action === 'done') {
      if (!approver && actor !== run.requestedBy) {
        return this.refuse(run, actor, action, `Only the requester or an approver may mark a step of ${id} done.`);
      }
    } else if (!approver) {
      const roles = this.deps.file.approvals.approver_roles.join(' or ');
      return this.refuse(
        run,
        actor,
        action,
        `Only ${roles} may ${action} ${action === 'abort' ? id : `a step of ${id}`}.`,
      );
    }
    const waiting = steps.find((s) => s.state === 'awaiting_done');
    const failed = steps.find((s) => s.state === 'failed');
    const acted = await inTransaction(this.deps.db, async (tx) => {
      switch (action) {
        case 'done': {
          if (run.state !== 'running' || !waiting) return undefined;
          // The engine finishes it (the kind's check says what was done) and goes on.
          const ok = await store.updateStep(tx, number, waiting.index, { state: 'running', actedBy: actor }, [
            'awaiting_done',
          ]);
          if (!ok) return undefined;
          await audit(tx, { run: number, actor, action: 'step_done', detail: waiting.id });
          return run;
        }
        case 'retry':
        case 'skip': {
          if (run.state !== 'stopped' || !failed) return undefined;
          const fields =
            action === 'retry'
              ? ({ state: 'pending', actedBy: actor } as const)
              : ({ state: 'skipped', actedBy: actor, finished: true } as const);
          if (!(await store.updateStep(tx, number, failed.index, fields, ['failed']))) return undefined;
          const moved = await store.transition(tx, number, ['stopped'], 'running');
          const audited: AuditAction = action === 'retry' ? 'step_retried' : 'step_skipped';
          if (moved) await audit(tx, { run: number, actor, action: audited, detail: failed.id });
          return moved;
        }
        case 'abort': {
          const from =
            run.state === 'running' && waiting
              ? ['running' as const]
              : ['stopped' as const, 'awaiting_approval' as const];
          const moved = await store.transition(tx, number, from, 'aborting', { decidedBy: actor, expiresAt: null });
          if (moved) await audit(tx, { run: number, actor, action: 'abort_requested', detail: run.runbook });
          return moved;
        }
      }
    });
    if (!acted) return this.refuse(run, actor, action, cannot(run, action));
    await this.deps.queue.run(number);
    await this.refresh(number);
    return acted;
  }

  async expire(number: number): Promise<void> {
    const run = await store.getRun(this.deps.db, number);
    if (!run || run.state !== 'awaiting_approval' || !run.expiresAt || run.expiresAt.getTime() > Date.now()) return;
    const expired = await store.transition(this.deps.db, number, ['awaiting_approval'], 'expired', {
      finished: true,
      outcome: ['approval expired'],
    });
    if (!expired) return;
    const detail = `after ${this.deps.file.approvals.expire_minutes} min`;
    await audit(this.deps.db, { run: number, actor: 'lifeline', action: 'expired', detail });
    await this.refresh(number);
  }

  private approverSet(): Set<string> {
    const { approvals, roles } = this.deps.file;
    return new Set(approvals.approver_roles.flatMap((role) => roles[role]?.slack_users ?? []));
  }

  private async decidable(
    number: number,
    actor: string,
    decision: 'approve' | 'reject',
  ): Promise<{ run: Run; steps: RunStep[] }> {
    const found = await this.find(number);
    const { run } = found;
    const id = runId(number);
    const approver = this.approverSet().has(actor);
    if (decision === 'approve') {
      if (!approver) {
        await this.refuse(
          run,
          actor,
          decision,
          `Only ${this.deps.file.approvals.approver_roles.join(' or ')} may approve ${id}.`,
        );
      }
      if (!approversOf(this.deps.file, run).includes(actor)) {
        await this.refuse(run, actor, decision, `You requested ${id}; another approver has to approve it.`);
      }
    } else if (!approver && actor !== run.requestedBy) {
      await this.refuse(run, actor, decision, `Only the requester or an approver may reject ${id}.`);
    }
    if (run.state !== 'awaiting_approval') {
      const state = run.state.replace('_', ' ');
      await this.refuse(run, actor, decision, `${id} is ${state}; it waits for no approval.`);
    }
    if (run.expiresAt && run.expiresAt.getTime() <= Date.now()) {
      await this.expire(number);
      await this.refuse(run, actor, decision, `The approval request for ${id} has expired; request the run again.`);
    }
    return found;
  }

  private async refuse(run: Run, actor: string, action: string, message: string | Said): Promise<never> {
    const error = new UserError('not_permitted', message);
    await audit(this.deps.db, {
      run: run.number,
      actor,
      action: 'approval_refused',
      detail: `${action}: ${error.message}`,
    });
    throw error;
  }

  private async refresh(number: number): Promise<void> {
    await this.deps.showProgress(number).catch((err: Error) => {
      this.deps.log.warn({ run: runId(number), err: err.message }, 'run message could not be posted or updated');
    });
  }
}

function cannot(run: Run, action: RunAction): string {
  const id = runId(run.number);
  const state = run.state.replace('_', ' ');
  switch (action) {
    case 'done':
      return `${id} has no step waiting for Done (it is ${state}).`;
    case 'retry':
    case 'skip':
      return `${id} has no failed step to ${action} (it is ${state}).`;
    case 'abort':
      return `${id} is ${state}; only a run that is stopped or waits for a person can be aborted.`;
  }
}
