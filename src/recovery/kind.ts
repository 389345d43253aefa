import type { EnvironmentConfig } from '../config.js';
import type { RecoveryJob } from './model.js';

/** What a step and the plan can use; `state` is persisted after every step so a resumed job picks up from it. */
export interface StepContext {
  readonly job: RecoveryJob;
  readonly env: EnvironmentConfig;
  readonly state: Record<string, unknown>;
  readonly signal: AbortSignal;
  /** A live detail for the running step ("snapshot 40 %"), throttled into the progress message. */
  note(detail: string): void;
}

export interface StepDefinition {
  readonly name: string;
  /** A destructive step is never run twice: if a worker died inside it, the job fails and says so. */
  readonly destructive: boolean;
  /** Returns the step's one-line result. */
  run(ctx: StepContext): Promise<string>;
}

export interface KindDefinition {
  /** Resolves what the job will do (which backup, its age...) and says it in words; throws UserError if it cannot. */
  plan(ctx: StepContext): Promise<string>;
  steps(job: RecoveryJob, env: EnvironmentConfig): readonly StepDefinition[];
  /** After a failed step: put things back if possible; returns what was done, for the report. */
  onFailure?(ctx: StepContext, failedStep: string): Promise<string | undefined>;
  /** The headline and the verification lines of a finished job, from its state. */
  summarise(ctx: StepContext, succeeded: boolean): { headline: string; verified: string[]; incomplete?: boolean };
}
