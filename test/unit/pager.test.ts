import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import { createEventsApiPager } from '../../src/adapters/pagerduty/client.js';
import type { PagerEvent } from '../../src/adapters/pagerduty/port.js';
import { PermanentError, TransientError } from '../../src/shared/errors.js';
import { PagerDutyStandIn } from '../../src/adapters/pagerduty/stand-in.js';
import { failure } from '../support/failure.js';

const TRIGGER: PagerEvent = {
  routingKey: 'rk-oncall-1111111111',
  action: 'trigger',
  dedupKey: 'lifeline-INC-3-oncall',
  payload: {
    summary: 'SEV1 INC-3: Database down',
    source: 'lifeline',
    severity: 'critical',
    customDetails: { incident: 'INC-3', step: 1 },
  },
};

let fake: PagerDutyStandIn;
beforeAll(async () => {
  fake = await new PagerDutyStandIn().start();
});
afterAll(async () => {
  await fake.stop();
});
afterEach(() => {
  fake.events.length = 0;
  fake.attempts.length = 0;
  fake.nextStatuses.length = 0;
});

function pager(options: { attempts?: number; timeoutMs?: number } = {}) {
  return createEventsApiPager({ url: fake.url, backoffMs: 5, timeoutMs: 2_000, ...options });
}

describe('createEventsApiPager: wire format', () => {
  it('sends a trigger with routing_key, event_action, dedup_key and payload', async () => {
    await pager().send(TRIGGER);
    expect(fake.events).toHaveLength(1);
    const { at, ...body } = fake.events[0]!;
    expect(typeof at).toBe('number');
    expect(body).toEqual({
      routing_key: 'rk-oncall-1111111111',
      event_action: 'trigger',
      dedup_key: 'lifeline-INC-3-oncall',
      payload: {
        summary: 'SEV1 INC-3: Database down',
        source: 'lifeline',
        severity: 'critical',
        custom_details: { incident: 'INC-3', step: 1 },
      },
    });
  });

  it('sends acknowledge and resolve without a payload', async () => {
    const p = pager();
    await p.send({ routingKey: 'rk-a', action: 'acknowledge', dedupKey: 'lifeline-INC-3-oncall' });
    await p.send({ routingKey: 'rk-a', action: 'resolve', dedupKey: 'lifeline-INC-3-oncall' });
    expect(fake.events.map(({ at: _at, ...rest }) => rest)).toEqual([
      { routing_key: 'rk-a', event_action: 'acknowledge', dedup_key: 'lifeline-INC-3-oncall' },
      { routing_key: 'rk-a', event_action: 'resolve', dedup_key: 'lifeline-INC-3-oncall' },
    ]);
  });

  it('omits custom_details when there are none', async () => {
    await pager().send({ ...TRIGGER, payload: { summary: 's', source: 'lifeline', severity: 'warning' } });
    expect(fake.events[0]?.payload).toEqual({ summary: 's', source: 'lifeline', severity: 'warning' });
  });

  it('caps the summary at PagerDuty’s 1024 characters', async () => {
    await pager().send({ ...TRIGGER, payload: { ...TRIGGER.payload!, summary: 's'.repeat(2000) } });
    expect(fake.events[0]?.payload?.summary).toBe('s'.repeat(1024));
  });
});

describe('createEventsApiPager: retries', () => {
  it('retries a 429 and then succeeds', async () => {
    fake.nextStatuses.push(429);
    await pager().send(TRIGGER);
    expect(fake.attempts).toHaveLength(2);
    expect(fake.events).toHaveLength(1);
  });

  it.each([500, 502, 503, 504])('retries a %i and then succeeds', async (status) => {
    fake.nextStatuses.push(status);
    await pager().send(TRIGGER);
    expect(fake.attempts).toHaveLength(2);
    expect(fake.events).toHaveLength(1);
  });

  it('retries several transient answers within the configured attempts', async () => {
    fake.nextStatuses.push(503, 429, 500);
    await pager({ attempts: 4 }).send(TRIGGER);
    expect(fake.attempts).toHaveLength(4);
    expect(fake.events).toHaveLength(1);
  });

  it.each([400, 403, 404, 413])('does not retry a %i: PermanentError', async (status) => {
    fake.nextStatuses.push(status);
    const err = await failure(pager().send(TRIGGER));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toContain(String(status));
    expect(fake.attempts).toHaveLength(1);
    expect(fake.events).toHaveLength(0);
  });

  it('persistent 5xx ends in TransientError after the configured attempts', async () => {
    fake.nextStatuses.push(500, 500, 500, 500, 500);
    const err = await failure(pager({ attempts: 3 }).send(TRIGGER));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toContain('500');
    expect(fake.attempts).toHaveLength(3);
    expect(fake.events).toHaveLength(0);
  });

  it('defaults to 3 attempts', async () => {
    fake.nextStatuses.push(503, 503, 503, 503);
    const err = await failure(createEventsApiPager({ url: fake.url, backoffMs: 1 }).send(TRIGGER));
    expect(err).toBeInstanceOf(TransientError);
    expect(fake.attempts).toHaveLength(3);
  });

  it('attempts: 1 means no retry', async () => {
    fake.nextStatuses.push(429);
    const err = await failure(pager({ attempts: 1 }).send(TRIGGER));
    expect(err).toBeInstanceOf(TransientError);
    expect(fake.attempts).toHaveLength(1);
  });

  it('backs off between attempts', async () => {
    fake.nextStatuses.push(500, 500);
    await createEventsApiPager({ url: fake.url, backoffMs: 40 }).send(TRIGGER);
    const [a, b, c] = fake.attempts;
    // Jittered between half and all of 40 ms, then of 80 ms.
    expect(b! - a!).toBeGreaterThanOrEqual(18);
    expect(c! - b!).toBeGreaterThanOrEqual(38);
  });

  it('an unreachable endpoint is a TransientError', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await failure(
      createEventsApiPager({ url: `http://127.0.0.1:${port}/v2/enqueue`, attempts: 2, backoffMs: 1 }).send(TRIGGER),
    );
    expect(err).toBeInstanceOf(TransientError);
  });
});

describe('createEventsApiPager: timeout', () => {
  let hung: Server;
  let url = '';
  const sockets = new Set<Socket>();
  let requests = 0;

  beforeAll(async () => {
    hung = createServer(() => {
      requests++; // never answers
    });
    hung.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/v2/enqueue`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hung.close(() => r()));
  });

  it('a server that never answers is cut off by the timeout', async () => {
    requests = 0;
    const started = Date.now();
    const err = await failure(createEventsApiPager({ url, timeoutMs: 150, attempts: 2, backoffMs: 5 }).send(TRIGGER));
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(TransientError);
    expect(requests).toBe(2);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2_000);
  });
});

describe('MemoryPager', () => {
  it('records events in order', async () => {
    const p = new MemoryPager();
    await p.send(TRIGGER);
    await p.send({ routingKey: 'rk', action: 'resolve', dedupKey: 'k' });
    expect(p.events).toEqual([TRIGGER, { routingKey: 'rk', action: 'resolve', dedupKey: 'k' }]);
  });

  it('failNext fails exactly one send and records nothing for it', async () => {
    const p = new MemoryPager();
    p.failNext(new TransientError('down'));
    await expect(p.send(TRIGGER)).rejects.toThrow(TransientError);
    expect(p.events).toEqual([]);
    await p.send(TRIGGER);
    expect(p.events).toEqual([TRIGGER]);
  });
});
