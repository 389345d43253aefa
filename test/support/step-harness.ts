// Runs one runbook step kind as the engine does, without the engine: params checked by the kind, a state kept as the
// engine stores it (the JSON of the last recordChange), and a way to open the step again from that stored state, as
// a resumed run does after its worker died (or a Retry does).
import type { BoundContext, RunInfo, StepKind, StepPlan, StepResult } from '../../src/domain/runbooks/step-kind.js';

export const RUN: RunInfo = {
  number: 7,
  runbook: 'frontend-rollback',
  requestedBy: 'U0LEAD',
  channel: 'C0EMERGENCY',
  dryRun: false,
};

export function paramsOf<D>(kind: StepKind<D>, raw: unknown): unknown {
  const parsed = kind.parseParams(raw);
  if (!parsed.ok) throw new Error(`bad params: ${JSON.stringify(parsed.issues)}`);
  return parsed.params;
}

export function planStep<D>(kind: StepKind<D>, raw: unknown, deps: D): Promise<StepPlan> {
  return kind.plan({ params: paramsOf(kind, raw), run: RUN, signal: new AbortController().signal }, deps);
}

export interface Attempt {
  /** What each recordChange said, with the state as it was stored then. */
  readonly changes: Array<{ readonly what: string; readonly state: unknown }>;
  readonly notes: string[];
  run(): Promise<void>;
  check(): Promise<StepResult<string>>;
  undo(): Promise<string | undefined>;
  /** The state as the engine would store it now (JSON), for a later attempt. */
  stored(): unknown;
}

/** One attempt of the step, from `stored` (a state an earlier attempt left; none for a first attempt). */
export function attempt<D>(
  kind: StepKind<D>,
  raw: unknown,
  deps: D,
  stored: unknown = {},
  options: { signal?: AbortSignal; run?: RunInfo } = {},
): Attempt {
  const open = kind.open(stored);
  const changes: Array<{ what: string; state: unknown }> = [];
  const notes: string[] = [];
  const stateNow = () => JSON.parse(JSON.stringify(open.state)) as unknown;
  const ctx: BoundContext = {
    params: paramsOf(kind, raw),
    run: options.run ?? RUN,
    signal: options.signal ?? new AbortController().signal,
    recordChange: async (what) => void changes.push({ what, state: stateNow() }),
    note: (detail) => void notes.push(detail),
  };
  return {
    changes,
    notes,
    run: () => open.run(ctx, deps),
    check: () => open.check(ctx, deps),
    undo: () => open.undo(ctx, deps),
    stored: stateNow,
  };
}

export interface StepHarness {
  /** What recordChange was called with, in order, over every attempt. */
  readonly changes: string[];
  readonly notes: string[];
  /** The state as last stored by recordChange (what a resumed run reads back). */
  stored(): unknown;
  plan(): Promise<StepPlan>;
  run(): Promise<void>;
  check(): Promise<StepResult<string>>;
  /** Forgets the in-memory state: the next run/check open the step from what was stored, as after a crash. */
  restart(): void;
}

/** Attempts of one step, one after the other, each starting from what the one before it recorded. */
export function stepHarness<D>(
  kind: StepKind<D>,
  rawParams: unknown,
  deps: D,
  options: { signal?: AbortSignal; run?: RunInfo } = {},
): StepHarness {
  const changes: string[] = [];
  const notes: string[] = [];
  let stored: unknown = undefined;
  const open = () => attempt(kind, rawParams, deps, stored, options);
  let current = open();
  const recorded = async <T>(work: () => Promise<T>): Promise<T> => {
    const seen = current.changes.length;
    try {
      return await work();
    } finally {
      for (const change of current.changes.slice(seen)) {
        changes.push(change.what);
        stored = change.state;
      }
      notes.push(...current.notes.splice(0));
    }
  };
  return {
    changes,
    notes,
    stored: () => stored,
    plan: () =>
      kind.plan(
        { params: paramsOf(kind, rawParams), run: options.run ?? RUN, signal: new AbortController().signal },
        deps,
      ),
    run: () => recorded(() => current.run()),
    check: () => recorded(() => current.check()),
    restart: () => {
      current = open();
    },
  };
}
