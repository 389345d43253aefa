// Typed job kinds: step deadlines that grow with a backup's size, and a kind's state checked when it is read back.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineKind, sizedDeadline, StateMismatchError } from '../../src/domain/recovery/kind.js';
import type { RecoveryJob } from '../../src/domain/recovery/model.js';
import { parseConfigText, type EnvironmentConfig } from '../../src/shared/config.js';
import { testConfigYaml } from '../support/test-config.js';

const MINUTE = 60_000;

describe('sizedDeadline', () => {
  it('is the default plus an hour per GB of backup file', () => {
    expect(sizedDeadline(undefined)(30 * MINUTE)).toBe(30 * MINUTE);
    expect(sizedDeadline(0)(30 * MINUTE)).toBe(30 * MINUTE);
    expect(sizedDeadline(1024 ** 3)(30 * MINUTE)).toBe(90 * MINUTE);
    expect(sizedDeadline(512 * 1024 ** 2)(10 * MINUTE)).toBe(40 * MINUTE);
    expect(sizedDeadline(10 * 1024 ** 3)(30 * MINUTE)).toBe(630 * MINUTE);
  });
});

const env: EnvironmentConfig = parseConfigText(testConfigYaml(), {
  PD_KEY_ONCALL: 'k1',
  PD_KEY_LEAD: 'k2',
  PD_KEY_CTO: 'k3',
  PD_KEY_CEO: 'k4',
}).environments.prod!;

function job(stepState: unknown): RecoveryJob {
  return {
    number: 7,
    kind: 'drill',
    env: 'prod',
    target: 'prod/drill',
    params: { kind: 'drill', trigger: 'command' },
    requestedBy: 'U0LEAD',
    requestedIn: 'C0EMERGENCY',
    responseUrl: undefined,
    state: 'running',
    needsApproval: false,
    plan: undefined,
    approval: undefined,
    decidedBy: undefined,
    decidedAt: undefined,
    expiresAt: undefined,
    cancelRequestedBy: undefined,
    progress: undefined,
    stepState,
    outcome: undefined,
    createdAt: new Date(),
    startedAt: undefined,
    finishedAt: undefined,
  };
}

/** A two-step kind whose state carries a planned backup and a count. */
const counting = defineKind({
  id: 'drill',
  state: z.object({
    backup: z.object({ name: z.string(), size: z.number() }).optional(),
    count: z.number().optional(),
  }),
  stepNames: { first: 'the first step', second: 'the second step' },
  plan: async (ctx) => {
    ctx.state.backup = { name: 'shop_20260101_000000.dump', size: 10 };
    return 'Count to two.';
  },
  steps: () => [
    {
      id: 'first',
      destructive: false,
      interruptible: true,
      deadline: (defaultMs, state) => defaultMs + (state.backup?.size ?? 0),
      run: async (ctx) => {
        ctx.state.count = (ctx.state.count ?? 0) + 1;
        return `counted ${ctx.state.count}`;
      },
    },
    {
      id: 'second',
      destructive: false,
      interruptible: true,
      run: async (ctx) => `counted ${(ctx.state.count ?? 0) + 1}`,
    },
  ],
  onFailure: async (_ctx, failedStep) => (failedStep === 'first' ? 'nothing was counted' : undefined),
  summarise: (ctx) => ({ headline: `Counted with ${ctx.state.backup?.name ?? 'nothing'}.`, verified: [] }),
});

describe('a kind reads its state back through its schema', () => {
  it('plans and runs on the state it stored, by step id, each step named as people see it', async () => {
    const signal = new AbortController().signal;
    const planning = counting.open(job({}), env, 'planning');
    expect(await planning.plan(signal)).toBe('Count to two.');
    const resumed = counting.open(job(JSON.parse(JSON.stringify(planning.state))), env, 'the first step');
    expect(counting.stepList(job({}), env).map((s) => [s.id, s.name])).toEqual([
      ['first', 'the first step'],
      ['second', 'the second step'],
    ]);
    expect(resumed.deadline('first', 1_000)).toBe(1_010);
    expect(resumed.deadline('second', 1_000)).toBe(1_000);
    expect(await resumed.run('first', signal, () => undefined)).toBe('counted 1');
    expect(resumed.state).toEqual({ backup: { name: 'shop_20260101_000000.dump', size: 10 }, count: 1 });
    expect(await resumed.onFailure('first', 'failed', signal)).toBe('nothing was counted');
    expect(resumed.summarise(true).headline).toBe('Counted with shop_20260101_000000.dump.');
  });

  it('a stored state that does not fit fails naming the kind, the step and the path, and runs nothing', () => {
    const stored = { backup: { name: 'shop_20260101_000000.dump', size: '10 bytes' }, count: 3 };
    const opening = () => counting.open(job(stored), env, 'the second step');
    expect(opening).toThrow(StateMismatchError);
    expect(opening).toThrow(/stored drill state does not fit this version of Lifeline at "the second step"/);
    expect(opening).toThrow(/backup\.size: .*expected number/i);
    expect(stored).toEqual({ backup: { name: 'shop_20260101_000000.dump', size: '10 bytes' }, count: 3 });
  });

  it('a state that is not an object at all is named as the whole state', () => {
    expect(() => counting.open(job('oops'), env, 'planning')).toThrow(/\(the whole state\): .*expected object/i);
  });
});

describe('TypeScript refuses what a kind does not declare (checked by tsc, not at run time)', () => {
  it('a misspelt state key, step id or failed-step id does not compile', () => {
    defineKind({
      id: 'scale',
      state: z.object({ count: z.number().optional() }),
      stepNames: { count: 'count' },
      plan: async (ctx) => {
        // @ts-expect-error `cuont` is not a key of the kind's state
        ctx.state.cuont = 1;
        return 'plan';
      },
      steps: () => [
        {
          // @ts-expect-error `cuont` is not one of the kind's step ids
          id: 'cuont',
          destructive: false,
          interruptible: false,
          run: async () => 'done',
        },
      ],
      // @ts-expect-error `cuont` can never be the failed step: the comparison has no overlap
      onFailure: async (_ctx, failedStep) => (failedStep === 'cuont' ? 'never' : undefined),
      summarise: () => ({ headline: 'done', verified: [] }),
    });
    expect(true).toBe(true);
  });
});
