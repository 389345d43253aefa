// The vercel_rollback and vercel_env step kinds against the in-memory Vercel: their plans (what, and what is
// missing), the one change each makes, a resumed step that waits on the change instead of making it again, Retry
// after a failure, and the startup check that a runbook with a Vercel step has VERCEL_TOKEN.
import { describe, expect, it } from 'vitest';
import { MemoryVercel } from '../../src/adapters/vercel/memory.js';
import { loadRunbooks } from '../../src/domain/runbooks/definitions.js';
import { vercelEnvKind } from '../../src/domain/runbooks/steps/vercel-env/index.js';
import { vercelRollbackKind } from '../../src/domain/runbooks/steps/vercel-rollback/index.js';
import { requireVercelToken } from '../../src/domain/runbooks/steps/vercel.js';
import { ConfigError } from '../../src/shared/config.js';
import { stepHarness } from '../support/step-harness.js';

function world(deployments = 3) {
  const vercel = new MemoryVercel();
  const project = vercel.addProject('shop', deployments);
  return { vercel, project, deps: { vercel, pollMs: 1 } };
}

const callsOf = (vercel: MemoryVercel, name: string) => vercel.calls.filter((c) => c.call === name);

describe('vercel_rollback', () => {
  it('plans the rollback from the production deployment to the newest READY one before it, with read calls only', async () => {
    const { vercel, deps } = world(3);
    const plan = await stepHarness(vercelRollbackKind, { project: 'shop' }, deps).plan();
    expect(plan.missing).toEqual([]);
    expect(plan.does).toMatch(
      /^would roll shop back from https:\/\/shop-3\.vercel\.app \(dpl_3, .*\) to https:\/\/shop-2\.vercel\.app \(dpl_2, /,
    );
    expect(vercel.calls.map((c) => c.call)).toEqual(['project', 'productionDeployments']);
  });

  it('says what is missing: no deployment before the current one', async () => {
    const { deps } = world(1);
    const plan = await stepHarness(vercelRollbackKind, { project: 'shop' }, deps).plan();
    expect(plan.missing).toEqual(['no READY production deployment of shop before dpl_1']);
  });

  it('records the deployment it goes back to before asking, then waits until production serves it', async () => {
    const { vercel, project, deps } = world(3);
    vercel.settleAfterReads = 3;
    const step = stepHarness(vercelRollbackKind, { project: 'shop' }, deps);
    await step.run();
    expect(step.changes).toEqual(['rolling shop back from dpl_3 to dpl_2 (https://shop-2.vercel.app)']);
    expect(step.stored()).toEqual({ projectId: project.id, deploymentId: 'dpl_2', url: 'https://shop-2.vercel.app' });
    expect(callsOf(vercel, 'rollback').map((c) => c.args)).toEqual([[project.id, 'dpl_2']]);
    const result = await step.check();
    expect(result).toEqual({
      detail: 'shop production serves https://shop-2.vercel.app (dpl_2)',
      outputs: { deployment: 'dpl_2', url: 'https://shop-2.vercel.app' },
    });
    expect(project.production).toBe('dpl_2');
    expect(step.notes.length).toBeGreaterThan(0);
  });

  it('resumed after a crash, waits on the rollback it asked for instead of going back one more', async () => {
    const { vercel, project, deps } = world(3);
    vercel.settleAfterReads = 2;
    const step = stepHarness(vercelRollbackKind, { project: 'shop' }, deps);
    await step.run();
    step.restart();
    await step.run();
    await step.check();
    expect(callsOf(vercel, 'rollback')).toHaveLength(1);
    expect(project.production).toBe('dpl_2');
  });

  it('a crash between recording and asking: the resumed step asks for the same deployment', async () => {
    const { vercel, project, deps } = world(3);
    const step = stepHarness(vercelRollbackKind, { project: 'shop' }, deps);
    const rollback = vercel.rollback.bind(vercel);
    vercel.rollback = () => Promise.reject(new Error('worker died'));
    await expect(step.run()).rejects.toThrow('worker died');
    vercel.rollback = rollback;
    step.restart();
    await step.run();
    await step.check();
    expect(callsOf(vercel, 'rollback').map((c) => c.args)).toEqual([[project.id, 'dpl_2']]);
    expect(project.production).toBe('dpl_2');
  });

  it('fails when Vercel reports the rollback failed, and stops waiting when the step is stopped', async () => {
    const { vercel, project, deps } = world(3);
    vercel.settleAfterReads = 1_000;
    const step = stepHarness(vercelRollbackKind, { project: 'shop' }, deps);
    await step.run();
    project.lastRollback = { toDeploymentId: 'dpl_2', status: 'failed' };
    await expect(step.check()).rejects.toThrow('Vercel reports the rollback of shop to dpl_2 failed');

    const stop = new AbortController();
    const again = stepHarness(vercelRollbackKind, { project: 'shop' }, deps, { signal: stop.signal });
    project.lastRollback = undefined;
    await again.run();
    const waiting = again.check();
    stop.abort(new Error('stopped by Abort'));
    await expect(waiting).rejects.toThrow('aborted');
  });
});

describe('vercel_env', () => {
  const params = { project: 'shop', key: 'DATABASE_URL', value: 'postgres://app:s3cret@dr-db:5432/app' };

  it('plans without showing the value, and names a project with nothing to redeploy', async () => {
    const { deps } = world(2);
    const plan = await stepHarness(vercelEnvKind, params, deps).plan();
    expect(plan).toEqual({
      does: 'would set DATABASE_URL of shop (production, encrypted) and redeploy https://shop-2.vercel.app (dpl_2)',
      missing: [],
    });
    expect(vercelEnvKind.describe(params)).toBe('set DATABASE_URL of shop (production) and redeploy it (Vercel)');
    const empty = world(0);
    expect((await stepHarness(vercelEnvKind, params, empty.deps).plan()).missing).toEqual([
      'shop has no production deployment to redeploy',
    ]);
  });

  it('sets the variable, redeploys production (tagged), waits for READY and for production to serve it', async () => {
    const { vercel, project, deps } = world(2);
    vercel.settleAfterReads = 3;
    const step = stepHarness(vercelEnvKind, params, deps);
    await step.run();
    expect(project.env.DATABASE_URL).toBe(params.value);
    expect(step.changes).toEqual([
      'set DATABASE_URL of shop (production)',
      'redeploying shop from dpl_2',
      'redeploy of shop started: dpl_3',
    ]);
    expect(step.changes.join(' ')).not.toContain('s3cret');
    const [redeploy] = callsOf(vercel, 'redeploy');
    expect(redeploy!.args.slice(0, 2)).toEqual(['shop', 'dpl_2']);
    expect(redeploy!.args[2]).toEqual({ lifelineRunbookStep: expect.stringMatching(/^frontend-rollback#7:\d+$/) });
    const result = await step.check();
    expect(result.outputs).toEqual({ deployment: 'dpl_3', url: 'https://shop-3.vercel.app' });
    expect(project.production).toBe('dpl_3');
  });

  it('a crash after the redeploy was asked for: the resumed step finds it by its tag and makes no second one', async () => {
    const { vercel, project, deps } = world(2);
    const step = stepHarness(vercelEnvKind, params, deps);
    // The redeploy goes through, but the worker dies before it records the new deployment's id.
    const redeploy = vercel.redeploy.bind(vercel);
    vercel.redeploy = async (...args) => {
      await redeploy(...args);
      throw new Error('worker died');
    };
    await expect(step.run()).rejects.toThrow('worker died');
    vercel.redeploy = redeploy;
    step.restart();
    await step.run();
    await step.check();
    expect(callsOf(vercel, 'redeploy')).toHaveLength(1);
    expect(step.changes.at(-1)).toBe('found the redeploy of shop an earlier attempt made: dpl_3');
    expect(project.production).toBe('dpl_3');
  });

  it('a failed build fails the step; Retry redeploys again', async () => {
    const { vercel, project, deps } = world(2);
    vercel.failNextBuild = true;
    const step = stepHarness(vercelEnvKind, params, deps);
    await step.run();
    await expect(step.check()).rejects.toThrow('the redeploy dpl_3 of shop ended ERROR');
    await step.run();
    await step.check();
    expect(callsOf(vercel, 'redeploy')).toHaveLength(2);
    expect(callsOf(vercel, 'upsertEnv')).toHaveLength(1);
    expect(project.production).toBe('dpl_4');
  });

  it('after an instant rollback, says the READY redeploy must be promoted instead of waiting forever', async () => {
    const { vercel, project, deps } = world(2);
    project.lastRollback = { toDeploymentId: 'dpl_1', status: 'succeeded' };
    const step = stepHarness(vercelEnvKind, params, deps);
    await step.run();
    await expect(step.check()).rejects.toThrow(/dpl_3 is READY, but shop was rolled back earlier.*promote dpl_3/);
    expect(vercel.deployments.find((d) => d.id === 'dpl_3')?.state).toBe('READY');
  });
});

describe('requireVercelToken', () => {
  const file = {
    runbooks: {
      'frontend-rollback': {
        title: 'Roll back',
        approval: 'once' as const,
        dry_run_schedule: undefined,
        steps: [{ notify: { channel: 'C0EMERGENCY', text: 'rolling back' } }, { vercel_rollback: { project: 'shop' } }],
      },
    },
  };

  it('names each Vercel step of a runbook when VERCEL_TOKEN is not set, and passes when it is', () => {
    const runbooks = loadRunbooks(file);
    let error: unknown;
    try {
      requireVercelToken(runbooks, undefined);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'runbooks.frontend-rollback.steps[1].vercel_rollback: needs VERCEL_TOKEN, which is not set',
    ]);
    expect(() => requireVercelToken(runbooks, 'vercel-token')).not.toThrow();
  });
});
