// The Statuspage client against the stand-in: the wire format, retries on 429 and 5xx only, Retry-After, timeouts.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createStatuspageClient } from '../../src/adapters/statuspage/client.js';
import { StatuspageStandIn } from '../../src/adapters/statuspage/stand-in.js';
import { PermanentError, TransientError } from '../../src/shared/errors.js';
import { retryAfterMs } from '../../src/shared/retry.js';
import { serveOnLoopback, type LoopbackServer } from '../../src/shared/loopback-server.js';

const PAGE = 'page0001';
const KEY = 'sp-unit-key-0123456789';
const COMPONENT = 'cmp0prod';

let standIn: StatuspageStandIn;

beforeAll(async () => {
  standIn = await new StatuspageStandIn({ pageId: PAGE, apiKey: KEY, components: [COMPONENT] }).start();
});
afterAll(async () => {
  await standIn.stop();
});
beforeEach(() => {
  standIn.calls.length = 0;
});

function client(overrides: Partial<Parameters<typeof createStatuspageClient>[0]> = {}) {
  return createStatuspageClient({ baseUrl: standIn.url, pageId: PAGE, apiKey: KEY, backoffMs: 20, ...overrides });
}

async function failure(work: Promise<unknown>): Promise<Error> {
  try {
    await work;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('Statuspage client', () => {
  it('creates an incident with its components and answers its id, shortlink and status', async () => {
    const created = await client().createIncident({
      name: 'Checkout down',
      status: 'investigating',
      body: 'We are looking into it.',
      components: { [COMPONENT]: 'major_outage' },
    });
    expect(created).toEqual({
      id: expect.any(String),
      shortlink: expect.stringMatching(/^https:\/\//),
      status: 'investigating',
    });
    const kept = standIn.incidents.find((i) => i.id === created.id)!;
    expect(kept.name).toBe('Checkout down');
    expect(kept.updates.map((u) => u.body)).toEqual(['We are looking into it.']);
    expect(standIn.components[COMPONENT]).toBe('major_outage');
    expect(standIn.calls).toEqual([expect.objectContaining({ method: 'POST', status: 201 })]);
  });

  it('updates an incident: status and body, and components only when sent', async () => {
    const sp = client();
    const created = await sp.createIncident({
      name: 'Slow API',
      status: 'investigating',
      body: 'Looking.',
      components: { [COMPONENT]: 'partial_outage' },
    });
    const monitoring = await sp.updateIncident(created.id, { status: 'monitoring', body: 'Fix deployed.' });
    expect(monitoring.status).toBe('monitoring');
    expect(standIn.components[COMPONENT]).toBe('partial_outage');
    await sp.updateIncident(created.id, {
      status: 'resolved',
      body: 'Resolved.',
      components: { [COMPONENT]: 'operational' },
    });
    expect(standIn.components[COMPONENT]).toBe('operational');
    expect(standIn.incidents.find((i) => i.id === created.id)?.status).toBe('resolved');
  });

  it('retries a 500 with backoff and succeeds', async () => {
    standIn.failNext(2, 500);
    const created = await client().createIncident({ name: 'x', status: 'identified', body: 'b', components: {} });
    expect(created.status).toBe('identified');
    expect(standIn.calls.map((c) => c.status)).toEqual([500, 500, 201]);
  });

  it('gives up after its attempts with a TransientError naming the status, for the job to retry', async () => {
    standIn.failNext(3, 503);
    const err = await failure(client().createIncident({ name: 'x', status: 'identified', body: 'b', components: {} }));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/^Statuspage answered 503/);
    expect(standIn.calls).toHaveLength(3);
  });

  it("honours a 429's Retry-After before trying again", async () => {
    standIn.failNext(1, 429, 1);
    const started = Date.now();
    await client().createIncident({ name: 'x', status: 'identified', body: 'b', components: {} });
    const [first, second] = standIn.calls;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(standIn.calls.map((c) => c.status)).toEqual([429, 201]);
  });

  it('does not wait out a Retry-After longer than its limit: it fails at once for the job to retry later', async () => {
    standIn.failNext(1, 429, 120);
    const started = Date.now();
    const err = await failure(client().createIncident({ name: 'x', status: 'identified', body: 'b', components: {} }));
    expect(err).toBeInstanceOf(TransientError);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(standIn.calls).toHaveLength(1);
  });

  it('never retries a 4xx: a bad key is a 401, an unknown incident a 404, a bad status a 422', async () => {
    const badKey = await failure(
      client({ apiKey: 'wrong-key' }).updateIncident('sp0001', { status: 'monitoring', body: 'b' }),
    );
    expect(badKey).toBeInstanceOf(PermanentError);
    expect(badKey.message).toBe('Statuspage answered 401: Could not authenticate');
    expect(badKey.message).not.toContain('wrong-key');

    const unknown = await failure(client().updateIncident('nope', { status: 'monitoring', body: 'b' }));
    expect(unknown).toBeInstanceOf(PermanentError);
    expect(unknown.message).toMatch(/^Statuspage answered 404/);

    const unknownPage = await failure(
      client({ pageId: 'otherpage' }).createIncident({ name: 'x', status: 'identified', body: 'b', components: {} }),
    );
    expect(unknownPage.message).toMatch(/^Statuspage answered 404/);

    const badStatus = await failure(
      client().createIncident({ name: 'x', status: 'on fire' as never, body: 'b', components: {} }),
    );
    expect(badStatus).toBeInstanceOf(PermanentError);
    expect(badStatus.message).toBe('Statuspage answered 422: Status is not included in the list');

    const badComponent = await failure(
      client().createIncident({
        name: 'x',
        status: 'identified',
        body: 'b',
        components: { [COMPONENT]: 'melted' as never },
      }),
    );
    expect(badComponent.message).toBe('Statuspage answered 422: Component status is not included in the list');
    expect(standIn.calls.map((c) => c.status)).toEqual([401, 404, 404, 422, 422]);
  });

  describe('a Statuspage that never answers', () => {
    let silent: LoopbackServer;
    beforeAll(async () => {
      silent = await serveOnLoopback(() => new Promise(() => undefined));
    });
    afterAll(async () => {
      await silent.close();
    });

    it('is given up on after its timeout for each attempt', async () => {
      const started = Date.now();
      const sp = createStatuspageClient({
        baseUrl: silent.url,
        pageId: PAGE,
        apiKey: KEY,
        timeoutMs: 200,
        attempts: 2,
        backoffMs: 10,
      });
      const err = await failure(sp.createIncident({ name: 'x', status: 'identified', body: 'b', components: {} }));
      expect(err).toBeInstanceOf(TransientError);
      expect(err.message).toMatch(/^Statuspage unreachable/);
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(400);
      expect(took).toBeLessThan(2_000);
    });
  });

  it('reads Retry-After in seconds or as an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3_000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
  });
});
