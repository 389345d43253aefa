// Runs one runbook step kind the way the engine does, without it: params checked by the kind, plan, then attempts
// of run + check (+ undo) on a state that a later attempt can start from (a resume after a crash or a Retry).
import type { BoundContext, RunInfo, StepKind, StepPlan, StepResult } from '../../src/domain/runbooks/step-kind.js';
import type { StepDeps } from '../../src/domain/runbooks/steps/index.js';

export const RUN: RunInfo = {
  number: 7,
  runbook: 'region-failover',
  requestedBy: 'U0LEAD',
  channel: 'C0EMERGENCY',
  dryRun: false,
};

export function paramsOf(kind: StepKind<StepDeps>, raw: unknown): unknown {
  const parsed = kind.parseParams(raw);
  if (!parsed.ok) throw new Error(`bad params: ${JSON.stringify(parsed.issues)}`);
  return parsed.params;
}

export function planStep(kind: StepKind<StepDeps>, raw: unknown, deps: StepDeps): Promise<StepPlan> {
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
export function attempt(kind: StepKind<StepDeps>, raw: unknown, deps: StepDeps, stored: unknown = {}): Attempt {
  const open = kind.open(stored);
  const changes: Array<{ what: string; state: unknown }> = [];
  const notes: string[] = [];
  const stateNow = () => JSON.parse(JSON.stringify(open.state)) as unknown;
  const ctx: BoundContext = {
    params: paramsOf(kind, raw),
    run: RUN,
    signal: new AbortController().signal,
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
