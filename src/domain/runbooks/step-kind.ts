// What a kind of runbook step is made of, and `defineStepKind`. A step kind is one folder under steps/ and one line
// in the table in steps/index.ts: its params schema (checked at startup, every bad key named by its path), the
// outputs later steps may use as `{{steps.<id>.<output>}}`, the state it keeps across attempts and restarts, a plan
// made of read calls only (the dry run and the approval message), a run that makes its one outside change, and a
// check that waits for that change to take and says what it verified.
import { z } from 'zod';

/** The run a step belongs to, as a step may need it (where to post, whom to name). */
export interface RunInfo {
  readonly number: number;
  readonly runbook: string;
  readonly requestedBy: string;
  /** Where the run's messages go: the channel the command came from. */
  readonly channel: string;
  readonly dryRun: boolean;
}

/** What a step's plan may use: its params (an output of an earlier step not known yet reads as a placeholder). */
export interface PlanContext<P> {
  readonly params: P;
  readonly run: RunInfo;
  readonly signal: AbortSignal;
}

/** What a step's run and check may use. */
export interface StepContext<P, S> extends PlanContext<P> {
  /** Kept across attempts and restarts of this step: a run that resumes sees what the earlier attempt recorded. */
  readonly state: S;
  /**
   * Stores the state now and writes `what` to the audit trail, in one transaction. A kind calls it as soon as an
   * outside change was requested, with that change's id in the state (a Route 53 change id, a snapshot copy's id, a
   * Vercel deployment id), and before it waits on the change: a run resumed after a crash then finds the id and
   * waits on that change instead of making it again. Every outside call that changes something is recorded so.
   */
  recordChange(what: string): Promise<void>;
  /** A live detail for the running step ("snapshot 40 %"), throttled into the progress message. */
  note(detail: string): void;
}

/** What the plan found: what the step would do, and what is missing for it to work (a dry run reports each). */
export interface StepPlan {
  readonly does: string;
  readonly missing: readonly string[];
}

export interface StepResult<O extends string> {
  /** One line for the progress message and the report. */
  readonly detail: string;
  readonly outputs: Readonly<Record<O, string>>;
  /** A step that restored data: how old the restored data was (the RPO achieved). */
  readonly dataAgeMs?: number;
}

export interface StepKindSpec<K extends string, D, P, S extends object, O extends string> {
  /** The key the step has in the config file, and the id its records are stored under: never changes. */
  readonly id: K;
  /** The step's params: a strict object (unknown keys are errors); string values may hold `{{steps.<id>.<out>}}`. */
  readonly params: z.ZodType<P>;
  /** What the step keeps between attempts (every field optional, JSON only), checked when read back. */
  readonly state: z.ZodType<S>;
  /** The names of its outputs, checked at startup against every `{{steps.<id>.<output>}}` that uses them. */
  readonly outputs: readonly O[];
  /**
   * A person's step (`confirm`): the engine waits for **Done** instead of calling run and check, and under
   * `approval: each_step` asks no approval for it.
   */
  readonly byPerson?: boolean;
  /** Passing it means the service is back: the RTO is measured from the first approval to the last such step. */
  readonly provesRecovery?: boolean;
  /** How long run + check may take unless the engine's default is longer. */
  deadlineMs?(params: P): number;
  /** One line from the params alone, for `/dr runbook show` (no calls). */
  describe(params: P): string;
  /** Read calls only: what the step would do and what is missing. Throws only when a read call itself failed. */
  plan(ctx: PlanContext<P>, deps: D): Promise<StepPlan>;
  /** Makes the step's outside change, or finds in its state that an earlier attempt made it. */
  run(ctx: StepContext<P, S>, deps: D): Promise<void>;
  /** Waits until the change took and verifies it; returns the step's result and outputs. */
  check(ctx: StepContext<P, S>, deps: D): Promise<StepResult<O>>;
  /** On Abort, puts back what a finished or failed attempt changed (`secret_update`'s old value); says what it did. */
  undo?(ctx: StepContext<P, S>, deps: D): Promise<string | undefined>;
}

/** A step kind as the engine sees it, its params, state and outputs no longer visible to it. */
export interface StepKind<D> {
  readonly id: string;
  readonly outputs: readonly string[];
  readonly byPerson: boolean;
  readonly provesRecovery: boolean;
  readonly canUndo: boolean;
  /** Checks params as the file holds them; the issues carry paths relative to the params. */
  parseParams(raw: unknown): { ok: true; params: unknown } | { ok: false; issues: readonly z.core.$ZodIssue[] };
  deadlineMs(params: unknown): number | undefined;
  describe(params: unknown): string;
  // Properties, not methods, so that TypeScript checks a kind's deps against the table's (methods are bivariant).
  readonly plan: (ctx: PlanContext<unknown>, deps: D) => Promise<StepPlan>;
  /** Binds a step to its stored state, checked against the kind's schema; throws when it does not fit. */
  open(state: unknown): OpenStep<D>;
}

export interface OpenStep<D> {
  /** The state to store. */
  readonly state: object;
  readonly run: (ctx: BoundContext, deps: D) => Promise<void>;
  readonly check: (ctx: BoundContext, deps: D) => Promise<StepResult<string>>;
  readonly undo: (ctx: BoundContext, deps: D) => Promise<string | undefined>;
}

/** What the engine gives a step; the kind adds its own typed state. */
export type BoundContext = Omit<StepContext<unknown, object>, 'state'>;

/**
 * A param that may be an earlier step's output: the kind's own schema, or a string holding `{{steps.<id>.<out>}}`
 * (checked at startup against the steps before it). Once the outputs are filled in, the kind's schema must hold.
 */
export function templated<T extends z.ZodType>(schema: T) {
  return z.union([schema, z.string().regex(HAS_TEMPLATE)]);
}

/** `{{steps.<id>.<output>}}`, spaces inside the braces allowed. */
export const TEMPLATE = /\{\{\s*steps\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\s*\}\}/g;
const HAS_TEMPLATE = /\{\{[^}]*\}\}/;

/** A step's stored state does not fit its kind as this version of Lifeline defines it: it cannot resume. */
export class StepStateMismatchError extends Error {
  constructor(kind: string, error: z.ZodError) {
    const where = error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(the whole state)'}: ${issue.message}`);
    super(`its stored ${kind} state does not fit this version of Lifeline (${where.join('; ')})`);
    this.name = 'StepStateMismatchError';
  }
}

export function defineStepKind<D>() {
  return <K extends string, P, S extends object, const O extends string>(
    spec: StepKindSpec<K, D, P, S, O>,
  ): StepKind<D> & { readonly spec: StepKindSpec<K, D, P, S, O> } => ({
    spec,
    id: spec.id,
    outputs: spec.outputs,
    byPerson: spec.byPerson ?? false,
    provesRecovery: spec.provesRecovery ?? false,
    canUndo: spec.undo !== undefined,
    parseParams(raw) {
      const read = spec.params.safeParse(raw);
      return read.success ? { ok: true, params: read.data } : { ok: false, issues: read.error.issues };
    },
    deadlineMs: (params) => spec.deadlineMs?.(params as P),
    describe: (params) => spec.describe(params as P),
    plan: (ctx, deps) => spec.plan(ctx as PlanContext<P>, deps),
    open(stored) {
      const read = spec.state.safeParse(stored ?? {});
      if (!read.success) throw new StepStateMismatchError(spec.id, read.error);
      const state = read.data;
      const bind = (ctx: BoundContext): StepContext<P, S> => ({
        ...(ctx as Omit<StepContext<P, S>, 'state'>),
        state,
      });
      return {
        state,
        run: (ctx, deps) => spec.run(bind(ctx), deps),
        check: (ctx, deps) => spec.check(bind(ctx), deps),
        undo: async (ctx, deps) => (spec.undo ? spec.undo(bind(ctx), deps) : undefined),
      };
    },
  });
}
