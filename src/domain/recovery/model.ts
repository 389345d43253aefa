import type { Said } from '../../shared/text.js';

export type JobKind = 'restore' | 'scale' | 'redeploy' | 'backup' | 'drill';
export type JobState =
  | 'planning'
  | 'awaiting_approval'
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'rejected'
  | 'expired';
export const ACTIVE_STATES: readonly JobState[] = ['planning', 'awaiting_approval', 'queued', 'running'];

export type RestoreSource =
  | { readonly type: 'latest' }
  | { readonly type: 'file'; readonly name: string }
  | { readonly type: 'snapshot'; readonly id: string };

/** Who started a backup or drill: someone's command, or its schedule (reported quietly when it succeeds). */
export type Trigger = 'command' | 'schedule';

export type JobParams =
  | { readonly kind: 'restore'; readonly source: RestoreSource }
  | { readonly kind: 'scale'; readonly service: string; readonly count: number }
  | { readonly kind: 'redeploy'; readonly service: string }
  | { readonly kind: 'backup'; readonly trigger: Trigger }
  | { readonly kind: 'drill'; readonly trigger: Trigger };

export interface RecoveryJob {
  readonly number: number;
  readonly kind: JobKind;
  readonly env: string;
  readonly target: string;
  readonly params: JobParams;
  readonly requestedBy: string;
  readonly requestedIn: string;
  readonly responseUrl: string | undefined;
  readonly state: JobState;
  readonly needsApproval: boolean;
  readonly plan: string | undefined;
  readonly approval: { readonly channel: string; readonly ts: string } | undefined;
  readonly decidedBy: string | undefined;
  readonly decidedAt: Date | undefined;
  readonly expiresAt: Date | undefined;
  readonly cancelRequestedBy: string | undefined;
  readonly progress: { readonly channel: string; readonly ts: string } | undefined;
  /** The kind's state as stored: its kind reads it back through its schema. */
  readonly stepState: unknown;
  /** How the job ended, people as parts (src/shared/text.ts). */
  readonly outcome: Said | undefined;
  readonly createdAt: Date;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
}

export function jobId(number: number): string {
  return `JOB-${number}`;
}

export function parseJobId(text: string): number | undefined {
  const match = /^JOB-([1-9][0-9]{0,8})$/i.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** What a job changes, for the one-active-job-per-target rule. Backups and drills only read the database: they
 * have their own targets, so neither ever holds up a restore. */
export function jobTarget(env: string, params: JobParams): string {
  switch (params.kind) {
    case 'restore':
      return `${env}/database`;
    case 'backup':
    case 'drill':
      return `${env}/${params.kind}`;
    default:
      return `${env}/ecs/${params.service}`;
  }
}

/** A job its schedule started: no plan or progress message, one quiet line when it succeeds, a loud one if not. */
export function isScheduled(job: Pick<RecoveryJob, 'params'>): boolean {
  return (job.params.kind === 'backup' || job.params.kind === 'drill') && job.params.trigger === 'schedule';
}

export function describeJob(env: string, params: JobParams): string {
  switch (params.kind) {
    case 'restore': {
      const from =
        params.source.type === 'latest'
          ? 'the latest backup'
          : params.source.type === 'file'
            ? params.source.name
            : `snapshot ${params.source.id}`;
      return `restore ${env} database from ${from}`;
    }
    case 'scale':
      return `scale ${env} ${params.service} to ${params.count}`;
    case 'redeploy':
      return `redeploy ${env} ${params.service}`;
    case 'backup':
      return `${params.trigger === 'schedule' ? 'scheduled ' : ''}backup of ${env}`;
    case 'drill':
      return `${params.trigger === 'schedule' ? 'scheduled ' : ''}restore drill of ${env}`;
  }
}

export interface StepRecord {
  readonly index: number;
  /** The step's stable id; undefined for a step recorded before ids, under a name no migration knew. */
  readonly step: string | undefined;
  /** What people saw of it when it ran. */
  readonly name: string;
  readonly destructive: boolean;
  readonly state: 'running' | 'succeeded' | 'failed';
  readonly startedAt: Date;
  readonly finishedAt: Date | undefined;
  readonly detail: Said;
}
