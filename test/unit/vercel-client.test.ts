// The Vercel client against the stand-in: the bearer token and teamId on every call, Vercel's refusals (403, 404) as
// PermanentErrors, 429 and 5xx tried again (a redeploy only after a 429), timeouts, the timestamp pagination of
// /v6/deployments, and the asynchronous rollback, env upsert and redeploy.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createVercelClient, type VercelClientOptions } from '../../src/adapters/vercel/client.js';
import { VercelStandIn } from '../../src/adapters/vercel/stand-in.js';
import { PermanentError, TransientError } from '../../src/shared/errors.js';
import { failure } from '../support/failure.js';

const TOKEN = 'vercel-unit-token-0123456789';
const TEAM = 'team_lifeline';

let standIn: VercelStandIn;

beforeAll(async () => {
  standIn = await new VercelStandIn({ token: TOKEN, teamId: TEAM, buildMs: 40, rollbackMs: 40 }).start();
});
afterAll(async () => {
  await standIn.stop();
});
beforeEach(() => {
  standIn.calls.length = 0;
  standIn.delayMs = 0;
});

function client(overrides: Partial<VercelClientOptions> = {}) {
  return createVercelClient({ baseUrl: standIn.url, token: TOKEN, teamId: TEAM, backoffMs: 10, ...overrides });
}

describe('Vercel client', () => {
  it('reads a project by name with its production deployment, sending the token and teamId', async () => {
    const seeded = standIn.addProject('shop-a', 3);
    const project = await client().project('shop-a');
    expect(project).toEqual({
      id: seeded.id,
      name: 'shop-a',
      production: expect.objectContaining({
        id: seeded.production,
        state: 'READY',
        url: expect.stringMatching(/^https:\/\/shop-a-/),
      }),
      lastRollback: undefined,
    });
    expect(standIn.calls).toEqual([
      expect.objectContaining({ method: 'GET', path: 'v9/projects/shop-a', query: `teamId=${TEAM}`, status: 200 }),
    ]);
  });

  it('refuses a wrong token, another team and an unknown project for good, naming what Vercel said', async () => {
    standIn.addProject('shop-b');
    const badToken = await failure(client({ token: 'not-the-token' }).project('shop-b'));
    expect(badToken).toBeInstanceOf(PermanentError);
    expect(badToken.message).toBe('Vercel answered 403: Not authorized');
    const otherTeam = await failure(client({ teamId: 'team_other' }).project('shop-b'));
    expect(otherTeam.message).toBe("Vercel answered 403: You don't have permission to access this team");
    // Without teamId Vercel looks in the token owner's own projects, where the team's are not.
    const noTeam = await failure(client({ teamId: undefined }).project('shop-b'));
    expect(noTeam.message).toBe('Vercel answered 404: Project not found');
    const unknown = await failure(client().project('no-such-project'));
    expect(unknown).toBeInstanceOf(PermanentError);
    expect(unknown.message).toBe('Vercel answered 404: Project not found');
    const deployment = await failure(client().deployment('dpl_missing'));
    expect(deployment.message).toBe('Vercel answered 404: The deployment could not be found.');
    // Refusals are not tried again.
    expect(standIn.calls).toHaveLength(5);
    const anonymous = await fetch(`${standIn.url}/v9/projects/shop-b?teamId=${TEAM}`);
    expect(anonymous.status).toBe(403);
    expect(await anonymous.json()).toEqual({
      error: { code: 'forbidden', message: 'The request is missing an authentication token', missingToken: true },
    });
  });

  it('tries again after a 429 (waiting its Retry-After) and after a 500, then succeeds', async () => {
    standIn.addProject('shop-c');
    standIn.failNext(1, 429, 0);
    standIn.failNext(1, 500);
    const project = await client().project('shop-c');
    expect(project.name).toBe('shop-c');
    expect(standIn.calls.map((c) => c.status)).toEqual([429, 500, 200]);
  });

  it('gives up after its attempts with a TransientError, and a 429 asking for too long a wait is not waited for', async () => {
    standIn.addProject('shop-d');
    standIn.failNext(3, 503);
    const down = await failure(client().project('shop-d'));
    expect(down).toBeInstanceOf(TransientError);
    expect(down.message).toBe('Vercel answered 503: stand-in failure');
    standIn.calls.length = 0;
    standIn.failNext(1, 429, 600);
    const limited = await failure(client().project('shop-d'));
    expect(limited).toBeInstanceOf(TransientError);
    expect(standIn.calls).toHaveLength(1);
  });

  it('times out a slow answer and tries again', async () => {
    standIn.addProject('shop-e');
    standIn.delayMs = 300;
    const started = Date.now();
    const slow = await failure(client({ timeoutMs: 50, attempts: 2 }).project('shop-e'));
    expect(slow).toBeInstanceOf(TransientError);
    expect(slow.message).toMatch(/^Vercel unreachable: /);
    expect(Date.now() - started).toBeLessThan(1_000);
    await sleep(400);
    expect(standIn.calls).toHaveLength(2);
  });

  it('pages through production deployments by timestamp, newest first, READY only when asked', async () => {
    const seeded = standIn.addProject('shop-f', 130);
    const vercel = client();
    const first = await vercel.productionDeployments(seeded.id, { readyOnly: true });
    expect(first.deployments).toHaveLength(100);
    expect(first.next).toBe(first.deployments.at(-1)!.createdAt);
    const second = await vercel.productionDeployments(seeded.id, { readyOnly: true, until: first.next });
    expect(second.deployments).toHaveLength(30);
    expect(second.next).toBeUndefined();
    const all = [...first.deployments, ...second.deployments];
    expect(new Set(all.map((d) => d.id)).size).toBe(130);
    expect(all.map((d) => d.createdAt)).toEqual([...all.map((d) => d.createdAt)].sort((a, b) => b - a));
    expect(standIn.calls[0]!.query).toBe(
      `projectId=${seeded.id}&target=production&state=READY&limit=100&teamId=${TEAM}`,
    );
  });

  it('rolls back asynchronously: 201 at once, the production deployment changes a little later', async () => {
    const seeded = standIn.addProject('shop-g', 3);
    const vercel = client();
    const before = (await vercel.project(seeded.id)).production!;
    const older = (await vercel.productionDeployments(seeded.id, { readyOnly: true, until: before.createdAt }))
      .deployments[0]!;
    await vercel.rollback(seeded.id, older.id);
    const right = await vercel.project(seeded.id);
    expect(right.production?.id).toBe(before.id);
    expect(right.lastRollback).toEqual({ toDeploymentId: older.id, status: 'in-progress' });
    await sleep(60);
    const later = await vercel.project(seeded.id);
    expect(later.production?.id).toBe(older.id);
    expect(later.lastRollback?.status).toBe('succeeded');
    expect(standIn.callsTo(`v1/projects/${seeded.id}/rollback/`, 'POST').map((c) => c.status)).toEqual([201]);
  });

  it('upserts an environment variable, encrypted, for production', async () => {
    const seeded = standIn.addProject('shop-h');
    const vercel = client();
    await vercel.upsertEnv(seeded.id, { key: 'DATABASE_URL', value: 'postgres://one', target: 'production' });
    await vercel.upsertEnv(seeded.id, { key: 'DATABASE_URL', value: 'postgres://two', target: 'production' });
    expect(seeded.env.DATABASE_URL).toEqual({ value: 'postgres://two', type: 'encrypted', target: ['production'] });
    expect(standIn.callsTo(`v10/projects/${seeded.id}/env`).map((c) => c.query)).toEqual([
      `upsert=true&teamId=${TEAM}`,
      `upsert=true&teamId=${TEAM}`,
    ]);
  });

  it('redeploys: a new deployment, BUILDING then READY, then production; a 500 is not repeated', async () => {
    const seeded = standIn.addProject('shop-i');
    const vercel = client();
    const from = (await vercel.project(seeded.id)).production!;
    const created = await vercel.redeploy('shop-i', from.id, { lifelineRunbookStep: 'tag-1' });
    expect(created.id).not.toBe(from.id);
    expect(['QUEUED', 'BUILDING']).toContain(created.state);
    expect(created.meta).toEqual({ lifelineRunbookStep: 'tag-1' });
    await sleep(60);
    expect((await vercel.deployment(created.id)).state).toBe('READY');
    expect((await vercel.project(seeded.id)).production?.id).toBe(created.id);

    standIn.failNext(1, 500);
    const refused = await failure(vercel.redeploy('shop-i', from.id, {}));
    expect(refused).toBeInstanceOf(PermanentError);
    expect(refused.message).toBe('Vercel answered 500: stand-in failure (not repeated)');
    expect(standIn.callsTo('v13/deployments', 'POST').map((c) => c.status)).toEqual([200, 500]);
  });
});
