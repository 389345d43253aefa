// What a kind of recovery job is made of, and `defineKind`, which binds a kind's typed state and step ids to the one
// untyped place there is: the job's row, read back when a job resumes after a crash or a lease takeover.
import type { z } from 'zod';
import type { EnvironmentConfig } from '../../shared/config.js';
import type { JobKind, RecoveryJob } from './model.js';

/** What a step and the plan can use; `state` is stored after every step so a resumed job picks up from it. */
export interface StepContext<S> {
  readonly job: RecoveryJob;
  readonly env: EnvironmentConfig;
  readonly state: S;
  /**
   * Fires when the step must stop: its deadline passed, the worker is shutting down or lost the job's lease, or (for
   * an interruptible step) somebody cancelled the job. The step stops its programs and throws.
   */
  readonly signal: AbortSignal;
  /** A live detail for the running step ("snapshot 40 %"), throttled into the progress message. */
  note(detail: string): void;
}

/** How the runner treats a step; what it does is in StepDefinition. */
export interface StepShape<Id extends string = string> {
  /** Stored with the step's record: what a resumed job is matched against, so it never changes once released. */
  readonly id: Id;
  /**
   * A destructive step is never run twice: if a worker died inside it, the resumed job runs the kind's failure
   * handling (put back, clean up) and fails. One that stops on its signal throws the recovery AbortError only when it
   * provably changed nothing (the swap: its transaction rolled back); the runner may then hand it back to be run anew.
   */
  readonly destructive: boolean;
  /**
   * `/dr cancel` may stop it while it runs: until it returns it has made no change the kind's failure handling cannot
   * undo (a preflight, a restore into a fresh database, verify queries, a wait). Otherwise a cancel takes effect at
   * the next step boundary.
   */
  readonly interruptible: boolean;
}

export interface StepDefinition<S, Id extends string> extends StepShape<Id> {
  /** How long the step may run, given the runner's default (LIFELINE_STEP_DEADLINE_MINUTES); unset = the default. */
  deadline?(defaultMs: number, state: S): number;
  /** Returns the step's one-line result. */
  run(ctx: StepContext<S>): Promise<string>;
}

/** Planning found nothing to change (a scale to the count the service already has): the job ends there. */
export interface NothingToChange {
  readonly nothingToChange: string;
}

/** Why the kind's failure handling runs: a step failed (or its worker died inside it), or the job was cancelled. */
export type StopReason = 'failed' | 'cancelled';

export interface KindSummary {
  readonly headline: string;
  readonly verified: string[];
  readonly incomplete?: boolean;
}

/** A kind as its author writes it: see the table in kinds/index.ts. */
export interface KindSpec<K extends JobKind, S extends object, Id extends string> {
  readonly id: K;
  /** Everything the kind keeps between steps, checked when it is read back: every field optional (planning starts
   * from nothing), and only JSON (it is stored as jsonb). */
  readonly state: z.ZodType<S>;
  /** Each step's stable id and what people see of it (the progress message, the plan, the outcome): the ids are
   * taken from here, so a step or a failure handler naming another id does not compile. */
  readonly stepNames: Readonly<Record<Id, string>>;
  /** Resolves what the job will do (which backup, its age...) and says it in words; throws UserError if it cannot. */
  plan(ctx: StepContext<S>): Promise<string | NothingToChange>;
  /** The job's steps in order: which ones depends on its params and env, never on its state. */
  steps(job: RecoveryJob, env: EnvironmentConfig): readonly StepDefinition<S, NoInfer<Id>>[];
  /**
   * After a failed, interrupted or cancelled step (or before the step a cancel stopped the job at): put things back
   * if possible and remove what the job left behind; returns what was done, for the report.
   */
  onFailure?(ctx: StepContext<S>, failedStep: NoInfer<Id>, reason: StopReason): Promise<string | undefined>;
  /** The headline and the verification lines of a finished job, from its state. */
  summarise(ctx: StepContext<S>, succeeded: boolean): KindSummary;
}

/** A step as the runner sees it: its id, what people see of it, how it is treated. */
export interface NamedStep extends StepShape {
  readonly name: string;
}

/** What the runner needs of any kind, its state and step ids no longer visible. */
export interface Kind<K extends JobKind = JobKind> {
  readonly id: K;
  /** The job's steps in order, named. */
  stepList(job: RecoveryJob, env: EnvironmentConfig): readonly NamedStep[];
  /**
   * Binds the kind to a job and its stored state, checked against the kind's schema; `at` names the step the job is
   * at, for the error. Throws StateMismatchError when the state does not fit.
   */
  open(job: RecoveryJob, env: EnvironmentConfig, at: string): OpenJob;
}

/** One job of a kind, its state read back and shared by every call, as the steps leave it. */
export interface OpenJob {
  /** The state to store. */
  readonly state: object;
  plan(signal: AbortSignal): Promise<string | NothingToChange>;
  /** The step's deadline, given the runner's default. */
  deadline(step: string, defaultMs: number): number;
  run(step: string, signal: AbortSignal, note: (detail: string) => void): Promise<string>;
  onFailure(failedStep: string, reason: StopReason, signal: AbortSignal): Promise<string | undefined>;
  summarise(succeeded: boolean): KindSummary;
}

/** A job's stored state does not fit its kind's schema: it cannot resume, and trying again cannot help. */
export class StateMismatchError extends Error {
  constructor(kind: JobKind, at: string, error: z.ZodError) {
    const where = error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(the whole state)'}: ${issue.message}`);
    super(`its stored ${kind} state does not fit this version of Lifeline at "${at}" (${where.join('; ')})`);
    this.name = 'StateMismatchError';
  }
}

/** A kind: its typed spec for its author and its tests, and the untyped side the runner drives by step id. */
export type TypedKind<K extends JobKind, S extends object, Id extends string> = KindSpec<K, S, Id> & Kind<K>;

export function defineKind<K extends JobKind, S extends object, const Id extends string>(
  spec: KindSpec<K, S, Id>,
): TypedKind<K, S, Id> {
  const isStep = (id: string): id is Id => Object.hasOwn(spec.stepNames, id);
  return {
    ...spec,
    stepList: (job, env) => spec.steps(job, env).map((s) => ({ ...s, name: spec.stepNames[s.id] })),
    open(job, env, at) {
      const read = spec.state.safeParse(job.stepState);
      if (!read.success) throw new StateMismatchError(spec.id, at, read.error);
      const state = read.data;
      const ctx = (signal: AbortSignal, note: (detail: string) => void): StepContext<S> => ({
        job,
        env,
        state,
        signal,
        note,
      });
      const step = (id: string): StepDefinition<S, Id> => {
        const found = spec.steps(job, env).find((s) => s.id === id);
        if (!found) throw new Error(`a ${spec.id} job has no step "${id}"`);
        return found;
      };
      const quiet = (): undefined => undefined;
      return {
        state,
        plan: (signal) => spec.plan(ctx(signal, quiet)),
        deadline: (id, defaultMs) => step(id).deadline?.(defaultMs, state) ?? defaultMs,
        run: (id, signal, note) => step(id).run(ctx(signal, note)),
        onFailure: async (id, reason, signal) =>
          spec.onFailure && isStep(id) ? spec.onFailure(ctx(signal, quiet), id, reason) : undefined,
        summarise: (succeeded) => spec.summarise(ctx(new AbortController().signal, quiet), succeeded),
      };
    },
  };
}

/** A value the plan or an earlier step stored, which this one cannot go on without. */
export function recorded<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} was not recorded by an earlier step`);
  return value;
}

const GIGABYTE = 1024 ** 3;
/** Restore-sized work (download, pg_restore, ANALYZE, pg_dump of the set-aside database) per GB of backup file. A
 * custom-format dump of text-heavy data may hold 50 times its size (pgbench rows measured ~55x), restored at
 * ~20 s per GB of data here: an hour per GB of backup file leaves room for a slow, busy server. */
const MS_PER_BACKUP_GIGABYTE = 60 * 60_000;

/** A deadline for work that grows with a backup's size: the default plus an hour per GB of the backup file. */
export function sizedDeadline(backupBytes: number | undefined): (defaultMs: number) => number {
  return (defaultMs) => defaultMs + Math.ceil(((backupBytes ?? 0) / GIGABYTE) * MS_PER_BACKUP_GIGABYTE);
}
