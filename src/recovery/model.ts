export type JobKind = 'restore' | 'scale' | 'redeploy';
export type JobState = 'planning' | 'awaiting_approval' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'rejected' | 'expired';
export const ACTIVE_STATES: readonly JobState[] = ['planning', 'awaiting_approval', 'queued', 'running'];

export type RestoreSource =
  | { readonly type: 'latest' }
  | { readonly type: 'file'; readonly name: string }
  | { readonly type: 'snapshot'; readonly id: string };

export type JobParams =
  | { readonly kind: 'restore'; readonly source: RestoreSource }
  | { readonly kind: 'scale'; readonly service: string; readonly count: number }
  | { readonly kind: 'redeploy'; readonly service: string };

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
  readonly stepState: Record<string, unknown>;
  readonly outcome: string | undefined;
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

/** What a job changes, for the one-active-job-per-target rule. */
export function jobTarget(env: string, params: JobParams): string {
  return params.kind === 'restore' ? `${env}/database` : `${env}/ecs/${params.service}`;
}

export function describeJob(env: string, params: JobParams): string {
  switch (params.kind) {
    case 'restore': {
      const from = params.source.type === 'latest' ? 'the latest backup' : params.source.type === 'file' ? params.source.name : `snapshot ${params.source.id}`;
      return `restore ${env} database from ${from}`;
    }
    case 'scale':
      return `scale ${env} ${params.service} to ${params.count}`;
    case 'redeploy':
      return `redeploy ${env} ${params.service}`;
  }
}

export interface StepRecord {
  readonly index: number;
  readonly name: string;
  readonly destructive: boolean;
  readonly state: 'running' | 'succeeded' | 'failed';
  readonly startedAt: Date;
  readonly finishedAt: Date | undefined;
  readonly detail: string;
}
