import { describe, expect, test } from 'vitest';
import { StartedList } from '../../src/wiring/started.js';

function recorder() {
  const stopped: string[] = [];
  const failures: { name: string; message: string }[] = [];
  return {
    stopped,
    failures,
    stop: (name: string) => async () => void stopped.push(name),
    failed: (name: string, message: string) => void failures.push({ name, message }),
  };
}

describe('StartedList: what a process started, stopped in reverse', () => {
  test('stops the roles in reverse order of start: the last one started stops first', async () => {
    const r = recorder();
    const started = new StartedList();
    for (const name of ['connections', 'queues', 'workers', 'reconcile loop', 'Slack app', 'API long polls']) {
      started.add(name, r.stop(name));
    }
    await started.stopAll(r.failed);
    expect(r.stopped).toEqual(['API long polls', 'Slack app', 'reconcile loop', 'workers', 'queues', 'connections']);
    expect(r.failures).toEqual([]);
  });

  test('a stop that fails is reported by name, and every other one still stops, in order', async () => {
    const r = recorder();
    const started = new StartedList();
    started.add('connections', r.stop('connections'));
    started.add('workers', async () => {
      throw new Error('Redis is gone');
    });
    started.add('Slack app', r.stop('Slack app'));
    await started.stopAll(r.failed);
    expect(r.stopped).toEqual(['Slack app', 'connections']);
    expect(r.failures).toEqual([{ name: 'workers', message: 'Redis is gone' }]);
  });

  test('each thing stops once: a second stopAll stops nothing', async () => {
    const r = recorder();
    const started = new StartedList();
    started.add('queues', r.stop('queues'));
    await started.stopAll(r.failed);
    await started.stopAll(r.failed);
    expect(r.stopped).toEqual(['queues']);
  });
});
