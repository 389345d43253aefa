// A runbook run as the engine, the service and the renderers see it.
import type { Said } from '../../shared/text.js';

export type RunState =
  | 'awaiting_approval'
  | 'running'
  | 'stopped'
  | 'aborting'
  | 'succeeded'
  | 'failed'
  | 'aborted'
  | 'rejected'
  | 'expired';

/** A run in one of these holds its runbook: a second run of it is refused. */
export const OPEN_RUN_STATES: readonly RunState[] = ['awaiting_approval', 'running', 'stopped', 'aborting'];
export const FINAL_RUN_STATES: readonly RunState[] = ['succeeded', 'failed', 'aborted', 'rejected', 'expired'];

export type RunStepState =
  'pending' | 'awaiting_approval' | 'awaiting_done' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface Approval {
  readonly by: string;
  readonly at: string;
  /** The step it was given for (approval: each_step), or null for the run's one approval. */
  readonly step: number | null;
}

export interface Run {
  readonly number: number;
  readonly runbook: string;
  readonly version: string;
  readonly title: string;
  readonly approval: 'once' | 'each_step';
  readonly requestedBy: string;
  readonly requestedIn: string;
  readonly responseUrl: string | undefined;
  readonly dryRun: boolean;
  readonly state: RunState;
  readonly approvals: readonly Approval[];
  readonly expiresAt: Date | undefined;
  readonly decidedBy: string | undefined;
  readonly progress: { readonly channel: string; readonly ts: string } | undefined;
  readonly outcome: Said | undefined;
  readonly createdAt: Date;
  readonly startedAt: Date | undefined;
  readonly recoveredAt: Date | undefined;
  readonly finishedAt: Date | undefined;
}

export interface RunStep {
  readonly index: number;
  readonly id: string;
  readonly kind: string;
  /** As approved, `{{steps.<id>.<output>}}` unfilled. */
  readonly params: unknown;
  readonly state: RunStepState;
  readonly attempts: number;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  readonly detail: string;
  readonly missing: readonly string[];
  readonly kindState: unknown;
  readonly outputs: Readonly<Record<string, string>> | undefined;
  readonly dataAgeMs: number | undefined;
  readonly actedBy: string | undefined;
  readonly undone: string | undefined;
}

export function runId(number: number): string {
  return `RUN-${number}`;
}

export function parseRunId(text: string): number | undefined {
  const match = /^RUN-([1-9][0-9]{0,8})$/i.exec(text.trim());
  return match ? Number(match[1]) : undefined;
}

/** The step the run is at: the first one not finished (succeeded or skipped). */
export function currentStep(steps: readonly RunStep[]): RunStep | undefined {
  return steps.find((s) => s.state !== 'succeeded' && s.state !== 'skipped');
}
