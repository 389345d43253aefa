// Runs one runbook step kind as the engine does, without the engine: params checked by the kind, a state kept as the
// engine stores it (the JSON of the last recordChange), and `restart` to open the step again from that stored state,
// as a resumed run does after its worker died.
import type { RunInfo, StepKind, StepPlan, StepResult } from '../../src/domain/runbooks/step-kind.js';

export const RUN: RunInfo = {
  number: 7,
  runbook: 'frontend-rollback',
  requestedBy: 'U0LEAD',
  channel: 'C0EMERGENCY',
  dryRun: false,
};

export interface StepHarness {
  /** What recordChange was called with, in order. */
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

export function stepHarness<D>(
  kind: StepKind<D>,
  rawParams: unknown,
  deps: D,
  options: { signal?: AbortSignal; run?: RunInfo } = {},
): StepHarness {
  const parsed = kind.parseParams(rawParams);
  if (!parsed.ok) throw new Error(`bad params: ${JSON.stringify(parsed.issues)}`);
  const params = parsed.params;
  const signal = options.signal ?? new AbortController().signal;
  const run = options.run ?? RUN;
  const changes: string[] = [];
  const notes: string[] = [];
  let stored: unknown = undefined;
  let open = kind.open(stored);
  const ctx = {
    params,
    run,
    signal,
    recordChange: async (what: string) => {
      stored = JSON.parse(JSON.stringify(open.state)) as unknown;
      changes.push(what);
    },
    note: (detail: string) => {
      notes.push(detail);
    },
  };
  return {
    changes,
    notes,
    stored: () => stored,
    plan: () => kind.plan({ params, run, signal }, deps),
    run: () => open.run(ctx, deps),
    check: () => open.check(ctx, deps),
    restart: () => {
      open = kind.open(stored);
    },
  };
}
