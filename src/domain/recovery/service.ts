// Recovery requests, plans, approvals and cancellation. Knows nothing of Slack; the runner does the work.
import type { EnvironmentConfig, FileConfig } from '../../shared/config.js';
import { audit } from '../audit/store.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import { UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { person, said, type Said } from '../../shared/text.js';
import { isResponder, responderRoles } from '../access/permissions.js';
import { describeJob, jobId, jobTarget, type JobParams, type RecoveryJob } from './model.js';
import type { RecoveryNotifier, RecoveryQueue } from './notifier.js';
import * as store from './store.js';

export interface RecoveryServiceDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly notifier: RecoveryNotifier;
  readonly queue: RecoveryQueue;
  readonly log: Logger;
}

function approversIn(file: Pick<FileConfig, 'approvals' | 'roles'>): string[] {
  return [...new Set(file.approvals.approver_roles.flatMap((role) => file.roles[role]?.slack_users ?? []))];
}

/** Who may approve a job: the members of approvals.approver_roles, its requester only with allow_self_approval. */
export function approversOf(
  file: Pick<FileConfig, 'approvals' | 'roles'>,
  job: Pick<RecoveryJob, 'requestedBy'>,
): string[] {
  const approvers = approversIn(file);
  return file.approvals.allow_self_approval ? approvers : approvers.filter((user) => user !== job.requestedBy);
}

export class RecoveryService {
  constructor(private readonly deps: RecoveryServiceDeps) {}

  environment(name: string): EnvironmentConfig {
    const env = this.deps.file.environments[name];
    if (!env) {
      const known = Object.keys(this.deps.file.environments).join(', ');
      throw new UserError('bad_command', `Unknown environment "${name}" (configured: ${known}).`);
    }
    return env;
  }

  /** Slack user ids allowed to approve: the members of approvals.approver_roles. */
  approvers(): string[] {
    return approversIn(this.deps.file);
  }

  /** Who may approve this job: the approvers, without its requester unless approvals.allow_self_approval. */
  approversFor(job: Pick<RecoveryJob, 'requestedBy'>): string[] {
    return approversOf(this.deps.file, job);
  }

  needsApproval(envName: string, params: JobParams): boolean {
    // A schedule has nobody to wait for; require_approval names only restore, scale and redeploy anyway.
    if (params.kind === 'backup' || params.kind === 'drill') return false;
    return (this.environment(envName).require_approval as readonly string[]).includes(params.kind);
  }

  /**
   * Responders only: anyone else is refused, and the refusal is on the audit trail. The /dr
   * lookups that are responders-only (logs, audit) call this before anything is queued or read.
   */
  async requireResponder(
    actor: string,
    action: string | Said,
    where: { env?: string | undefined; job?: number } = {},
  ): Promise<void> {
    if (isResponder(this.deps.file, actor)) return;
    const what = typeof action === 'string' ? [action] : action;
    const refusal = new UserError('not_permitted', [
      `Only responders (${responderRoles(this.deps.file).join(', ')}) may `,
      ...what,
      '.',
    ]);
    await audit(this.deps.db, { ...where, actor, action: 'not_permitted', detail: refusal.message });
    throw refusal;
  }

  /** Records the request and hands it to a worker to plan. Refuses when another job holds the same target. */
  async request(input: {
    env: string;
    params: JobParams;
    actor: string;
    channel: string;
    responseUrl?: string | undefined;
    /** An approval already given that covers this job (a runbook run's): the job asks for none of its own. */
    approvedAs?: string;
  }): Promise<RecoveryJob> {
    this.environment(input.env);
    const what = `request a job (${describeJob(input.env, input.params)})`;
    await this.requireResponder(input.actor, what, { env: input.env });
    const target = jobTarget(input.env, input.params);
    let job: RecoveryJob;
    try {
      job = await inTransaction(this.deps.db, async (tx) => {
        const created = await store.insertJob(tx, {
          kind: input.params.kind,
          env: input.env,
          target,
          params: input.params,
          requestedBy: input.actor,
          requestedIn: input.channel,
          responseUrl: input.responseUrl,
          needsApproval: input.approvedAs === undefined && this.needsApproval(input.env, input.params),
        });
        const covered = input.approvedAs === undefined ? '' : ` (approved as ${input.approvedAs})`;
        await audit(tx, {
          env: input.env,
          job: created.number,
          actor: input.actor,
          action: 'requested',
          detail: `${describeJob(input.env, input.params)}${covered}`,
        });
        return created;
      });
    } catch (err) {
      if (err instanceof store.TargetBusyError) {
        const holder = err.holder;
        const id = jobId(holder.number);
        const what = `${id} (${describeJob(holder.env, holder.params)}, requested by `;
        const state = holder.state.replace('_', ' ');
        throw new UserError(
          'already_done',
          said`${what}${person(holder.requestedBy)}) is ${state} on the same target; one job at a time. Wait for it, or \`/dr cancel ${id}\`.`,
        );
      }
      throw err;
    }
    await this.deps.queue.plan(job.number);
    return job;
  }

  /** Approve: only approvers, never the requester unless allowed; only while awaiting approval and not expired. */
  async approve(number: number, actor: string): Promise<RecoveryJob> {
    const job = await this.decide(number, actor, 'approve');
    await this.deps.queue.run(job.number);
    return job;
  }

  /** Reject: the requester or any approver. */
  async reject(number: number, actor: string): Promise<RecoveryJob> {
    return this.decide(number, actor, 'reject');
  }

  /**
   * Cancels a job that has not started at once. A running one stops within a heartbeat when its running step may be
   * interrupted (`running.interruptible`), else before its next step; either way its leftovers are cleaned up.
   */
  async cancel(
    number: number,
    actor: string,
  ): Promise<{ job: RecoveryJob; immediate: boolean; running?: { name: string; interruptible: boolean } | undefined }> {
    const job = await this.find(number);
    if (actor !== job.requestedBy) {
      const what = said`cancel ${jobId(number)}, which ${person(job.requestedBy)} requested`;
      await this.requireResponder(actor, what, { env: job.env, job: number });
    }
    const stopped = await store.transition(
      this.deps.db,
      number,
      ['planning', 'awaiting_approval', 'queued'],
      'cancelled',
      {
        cancel_requested_by: actor,
        outcome: said`cancelled by ${person(actor)} before it started`,
        finished: true,
      },
    );
    if (stopped) {
      await audit(this.deps.db, { env: job.env, job: number, actor, action: 'cancelled', detail: 'before it started' });
      await this.refreshPlan(stopped);
      return { job: stopped, immediate: true };
    }
    // Read again: a worker may have started it between the first read and the attempt above.
    const now = await this.find(number);
    if (now.state !== 'running') {
      const ended = now.state === 'succeeded' ? 'succeeded' : `ended (${now.state})`;
      throw new UserError('already_done', `${jobId(number)} has already ${ended}.`);
    }
    await store.requestCancel(this.deps.db, number, actor);
    const running = await store.runningStep(this.deps.db, number);
    const when = running?.interruptible ? `interrupts "${running.name}"` : 'stops before the next step';
    await audit(this.deps.db, { env: job.env, job: number, actor, action: 'cancel_requested', detail: when });
    return { job: now, immediate: false, running };
  }

  async expire(number: number): Promise<void> {
    const expired = await store.transition(this.deps.db, number, ['awaiting_approval'], 'expired', {
      outcome: ['approval expired'],
      finished: true,
    });
    if (!expired) return;
    await audit(this.deps.db, {
      env: expired.env,
      job: number,
      actor: 'lifeline',
      action: 'expired',
      detail: `after ${this.deps.file.approvals.expire_minutes} min`,
    });
    await this.refreshPlan(expired);
  }

  async activeJobs(): Promise<RecoveryJob[]> {
    return store.activeJobs(this.deps.db);
  }

  async find(number: number): Promise<RecoveryJob> {
    const job = await store.getJob(this.deps.db, number);
    if (!job) throw new UserError('bad_command', `There is no job ${jobId(number)}.`);
    return job;
  }

  private async decide(number: number, actor: string, decision: 'approve' | 'reject'): Promise<RecoveryJob> {
    const job = await this.find(number);
    const approvers = this.approvers();
    const isApprover = approvers.includes(actor);
    const refuse = async (message: string): Promise<never> => {
      await audit(this.deps.db, {
        env: job.env,
        job: number,
        actor,
        action: 'approval_refused',
        detail: `${decision}: ${message}`,
      });
      throw new UserError('not_permitted', message);
    };
    if (decision === 'approve') {
      if (!isApprover)
        await refuse(`Only ${this.deps.file.approvals.approver_roles.join(' or ')} may approve ${jobId(number)}.`);
      if (actor === job.requestedBy && !this.deps.file.approvals.allow_self_approval) {
        await refuse(`You requested ${jobId(number)}; another approver has to approve it.`);
      }
    } else if (!isApprover && actor !== job.requestedBy) {
      await refuse(`Only the requester or an approver may reject ${jobId(number)}.`);
    }
    if (job.state === 'planning') {
      await refuse(
        `${jobId(number)} is still being planned; it can be ${decision === 'approve' ? 'approved' : 'rejected'} once its plan is posted.`,
      );
    }
    if (job.state !== 'awaiting_approval') {
      await refuse(
        `${jobId(number)} is ${job.state.replace('_', ' ')}; it can no longer be ${decision === 'approve' ? 'approved' : 'rejected'}.`,
      );
    }
    if (job.expiresAt && job.expiresAt.getTime() <= Date.now()) {
      await this.expire(number);
      await refuse(`The approval request for ${jobId(number)} has expired; request it again.`);
    }
    const decided = await store.transition(
      this.deps.db,
      number,
      ['awaiting_approval'],
      decision === 'approve' ? 'queued' : 'rejected',
      {
        decided_by: actor,
        decided: true,
        ...(decision === 'reject' ? { outcome: said`rejected by ${person(actor)}`, finished: true } : {}),
      },
    );
    if (!decided) await refuse(`${jobId(number)} was decided a moment ago by someone else.`);
    await audit(this.deps.db, {
      env: job.env,
      job: number,
      actor,
      action: decision === 'approve' ? 'approved' : 'rejected',
      detail: job.plan ?? '',
    });
    await this.refreshPlan(decided!);
    return decided!;
  }

  private async refreshPlan(job: RecoveryJob): Promise<void> {
    try {
      await this.deps.notifier.updatePlan(job, this.approversFor(job));
    } catch (err) {
      this.deps.log.warn({ job: jobId(job.number), err: (err as Error).message }, 'plan message update failed');
    }
  }
}
