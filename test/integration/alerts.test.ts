// AlertDesk and RpoWatch against the real PostgreSQL (open_alerts, migrated fresh) with the in-memory pager and
// chat: one trigger and one post while an alert is open, nothing again after a restart, one resolve when it
// clears, and failures that leave the alert to be sent on the next call without sending anything twice.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import type { AlertNotice, RpoBreach, RpoMet } from '../../src/domain/backups/alert-notifier.js';
import { AlertDesk, alertKey } from '../../src/domain/backups/alerts.js';
import { MemoryStore } from '../../src/adapters/backup-store/memory.js';
import { backupFileName, safetyCopyFileName } from '../../src/domain/backups/names.js';
import { RpoWatch, type RpoReading } from '../../src/domain/backups/rpo-watch.js';
import type { BackupStore } from '../../src/adapters/backup-store/port.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { TransientError } from '../../src/shared/errors.js';
import { alertMessage, createSlackAlertNotifier } from '../../src/delivery/slack/alert-notifier.js';
import { createLogger, type Logger } from '../../src/shared/log.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testConfigYaml } from '../support/test-config.js';

const EMERGENCY = 'C0EMERGENCY';
const ONCALL_KEY = 'rk-oncall-alerts-0000';
const STAGING_STORE = 'file:///tmp/lltest-rpo-staging';
const PRODUCTION_STORE = 's3://lltest-rpo-bucket/production/';
const STAGING_PREFIX = 'staging_app';

const file: FileConfig = parseConfigText(
  testConfigYaml({
    emergencyChannel: EMERGENCY,
    environmentsYaml: `  staging:
    database: { url: "postgres://127.0.0.1:5432/staging" }
    backups: { store: "${STAGING_STORE}", prefix: ${STAGING_PREFIX}, retention_days: 7, rpo_minutes: 60 }
  production:
    database: { url: "postgres://127.0.0.1:5432/production" }
    backups: { store: "${PRODUCTION_STORE}", prefix: prod_app, retention_days: 30, rpo_minutes: 360 }`,
  }),
  {
    PD_KEY_ONCALL: ONCALL_KEY,
    PD_KEY_LEAD: 'rk-lead-alerts-00000',
    PD_KEY_CTO: 'rk-cto-alerts-000000',
    PD_KEY_CEO: 'rk-ceo-alerts-000000',
  },
);

let database: TestDatabase;
let db: Db;
let logLines: string[];
let log: Logger;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPool(database.url, createLogger('silent', []));
  await migrate(db);
});

afterAll(async () => {
  await db?.end();
  await database?.drop();
});

beforeEach(async () => {
  await db.query('TRUNCATE open_alerts');
  logLines = [];
  log = createLogger('warn', [], { write: (line: string) => logLines.push(line) });
});

interface AlertRow {
  dedup_key: string;
  env: string;
  kind: string;
  summary: string;
  paged: boolean;
  posted: boolean;
}

async function rows(): Promise<AlertRow[]> {
  const { rows: found } = await db.query<AlertRow>(
    'SELECT dedup_key, env, kind, summary, paged_at IS NOT NULL AS paged, posted_at IS NOT NULL AS posted FROM open_alerts ORDER BY dedup_key',
  );
  return found;
}

function desk(pager: MemoryPager, chat: MemoryChat, config: FileConfig = file): AlertDesk {
  return new AlertDesk({ db, pager, notifier: createSlackAlertNotifier(chat, config), file: config, log });
}

const trigger = (dedupKey: string, summary: string, env: string) => ({
  routingKey: ONCALL_KEY,
  action: 'trigger',
  dedupKey,
  payload: { summary, source: 'lifeline', severity: 'warning', customDetails: { env } },
});
const resolve = (dedupKey: string) => ({ routingKey: ONCALL_KEY, action: 'resolve', dedupKey });
const posted = (notice: AlertNotice) => ({
  kind: 'post',
  channel: EMERGENCY,
  ts: expect.any(String),
  message: alertMessage(notice),
});
// Notices told apart by the store location or backup name they carry.
const HOUR = 3_600_000;
const breach = (location: string): RpoBreach => ({
  kind: 'rpo_breach',
  env: 'staging',
  newest: undefined,
  location,
  rpoMs: HOUR,
});
const met = (name: string): RpoMet => ({
  kind: 'rpo_met',
  env: 'staging',
  newest: { name, ageMs: 60_000 },
  rpoMs: HOUR,
});

describe('AlertDesk', () => {
  test('raise twice: one trigger (warning, lifeline-rpo-<env>, on-call routing key) and one post; the row records both', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    expect(alertKey('rpo', 'staging')).toBe('lifeline-rpo-staging');
    await alerts.raise('rpo', 'staging', 'RPO breach: first', breach('breach, first'));
    await alerts.raise('rpo', 'staging', 'RPO breach: second', breach('breach, second'));
    expect(pager.events).toEqual([trigger('lifeline-rpo-staging', 'RPO breach: first', 'staging')]);
    expect(chat.calls).toEqual([posted(breach('breach, first'))]);
    expect(await alerts.isOpen('rpo', 'staging')).toBe(true);
    expect(await rows()).toEqual([
      {
        dedup_key: 'lifeline-rpo-staging',
        env: 'staging',
        kind: 'rpo',
        summary: 'RPO breach: first',
        paged: true,
        posted: true,
      },
    ]);
  });

  test('after a restart (a new AlertDesk) raising again sends nothing; clear sends one resolve and one post and removes the row', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    await desk(pager, chat).raise('rpo', 'staging', 'RPO breach', breach('breach'));
    const restarted = desk(pager, chat);
    await restarted.raise('rpo', 'staging', 'RPO breach, still', breach('breach, still'));
    expect(pager.events).toHaveLength(1);
    expect(chat.calls).toHaveLength(1);

    expect(await restarted.clear('rpo', 'staging', met('RPO met again'))).toBe(true);
    expect(pager.events).toEqual([
      trigger('lifeline-rpo-staging', 'RPO breach', 'staging'),
      resolve('lifeline-rpo-staging'),
    ]);
    expect(chat.calls).toEqual([posted(breach('breach')), posted(met('RPO met again'))]);
    expect(await rows()).toEqual([]);
    expect(await restarted.isOpen('rpo', 'staging')).toBe(false);

    // Cleared twice: nothing more.
    expect(await desk(pager, chat).clear('rpo', 'staging', met('RPO met again'))).toBe(false);
    expect(pager.events).toHaveLength(2);
    expect(chat.calls).toHaveLength(2);
  });

  test('clear when nothing is open: false, nothing sent, no row', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    expect(await alerts.clear('rpo', 'staging', met('RPO met again'))).toBe(false);
    expect(await alerts.clear('backup_failed', 'production', undefined)).toBe(false);
    expect(pager.events).toEqual([]);
    expect(chat.calls).toEqual([]);
    expect(await rows()).toEqual([]);
  });

  test('a pager failure on raise: nothing posted, no row; the next raise pages and posts once', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    pager.failNext(new TransientError('PagerDuty unreachable'));
    const raised = alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    await expect(raised).rejects.toThrow('PagerDuty unreachable');
    expect(pager.events).toEqual([]);
    expect(chat.calls).toEqual([]);
    expect(await rows()).toEqual([]);
    expect(await alerts.isOpen('rpo', 'staging')).toBe(false);

    await alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    await alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    expect(pager.events).toEqual([trigger('lifeline-rpo-staging', 'RPO breach', 'staging')]);
    expect(chat.calls).toEqual([posted(breach('breach'))]);
  });

  test('a Slack failure on raise after the page went out: the next raise posts, and does not page a second time', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    chat.failNext(new TransientError('Slack unreachable'));
    await expect(alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'))).rejects.toThrow('Slack unreachable');
    expect(chat.calls).toEqual([]);
    expect(pager.events).toHaveLength(1); // PagerDuty has it, whatever the database says

    await alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    expect(chat.calls).toEqual([posted(breach('breach'))]);
    expect(pager.events).toEqual([trigger('lifeline-rpo-staging', 'RPO breach', 'staging')]);
  });

  test('a pager failure on clear: nothing posted, the alert stays open; the next clear resolves and posts once', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    await alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    const before = await rows();
    pager.failNext(new TransientError('PagerDuty unreachable'));
    await expect(alerts.clear('rpo', 'staging', met('met again'))).rejects.toThrow('PagerDuty unreachable');
    expect(pager.events).toHaveLength(1);
    expect(chat.calls).toHaveLength(1);
    expect(await rows()).toEqual(before);

    expect(await alerts.clear('rpo', 'staging', met('met again'))).toBe(true);
    expect(pager.events.map((e) => e.action)).toEqual(['trigger', 'resolve']);
    expect(chat.calls).toEqual([posted(breach('breach')), posted(met('met again'))]);
    expect(await rows()).toEqual([]);
  });

  test('a Slack failure on clear after PagerDuty was told resolve: a new breach pages again', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    await alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    chat.failNext(new TransientError('Slack unreachable'));
    await alerts.clear('rpo', 'staging', met('met again')).catch(() => undefined);
    expect(pager.events.map((e) => e.action)).toEqual(['trigger', 'resolve']);

    // PagerDuty's incident is resolved: the next breach must reach on-call.
    await alerts.raise('rpo', 'staging', 'RPO breach again', breach('breach again'));
    expect(pager.events.map((e) => e.action)).toEqual(['trigger', 'resolve', 'trigger']);
  });

  test('two replicas raising at once: one trigger, one post', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const replicas = [desk(pager, chat), desk(pager, chat)];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        replicas[i % 2]!.raise('backup_failed', 'production', `backup failed ${i}`, breach(`post ${i}`)),
      ),
    );
    expect(pager.events).toHaveLength(1);
    expect(pager.events[0]).toMatchObject({ action: 'trigger', dedupKey: 'lifeline-backup-failed-production' });
    expect(chat.calls).toHaveLength(1);
    expect(await rows()).toHaveLength(1);
  });

  test('without a post (someone else said it in Slack): paged only, and a later raise with a post posts nothing', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    await alerts.raise('backup_failed', 'staging', 'backup failed', undefined);
    await alerts.raise('backup_failed', 'staging', 'backup failed', breach('backup failed'));
    expect(pager.events).toEqual([trigger('lifeline-backup-failed-staging', 'backup failed', 'staging')]);
    expect(chat.calls).toEqual([]);
    expect(await alerts.clear('backup_failed', 'staging', undefined)).toBe(true);
    expect(pager.events.map((e) => e.action)).toEqual(['trigger', 'resolve']);
    expect(chat.calls).toEqual([]);
  });

  test('kinds and envs are separate alerts; clearing one leaves the others open', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    await alerts.raise('rpo', 'staging', 'a', breach('a'));
    await alerts.raise('backup_failed', 'staging', 'b', breach('b'));
    await alerts.raise('rpo', 'production', 'c', breach('c'));
    expect(pager.events.map((e) => e.dedupKey)).toEqual([
      'lifeline-rpo-staging',
      'lifeline-backup-failed-staging',
      'lifeline-rpo-production',
    ]);
    await alerts.clear('rpo', 'staging', undefined);
    expect(await alerts.isOpen('rpo', 'staging')).toBe(false);
    expect(await alerts.isOpen('backup_failed', 'staging')).toBe(true);
    expect(await alerts.isOpen('rpo', 'production')).toBe(true);
    expect(pager.events.at(-1)).toEqual(resolve('lifeline-rpo-staging'));
  });

  test('no on-call routing key: posted, not paged, and a warning logged', async () => {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const roles = Object.fromEntries(Object.entries(file.roles).filter(([role]) => role !== 'oncall'));
    const alerts = desk(pager, chat, { ...file, roles });
    await alerts.raise('rpo', 'staging', 'RPO breach', breach('breach'));
    expect(pager.events).toEqual([]);
    expect(chat.calls).toEqual([posted(breach('breach'))]);
    expect(logLines.join('\n')).toMatch(/no \\"oncall\\" role with a pagerduty_routing_key/);
    expect(await alerts.clear('rpo', 'staging', met('met again'))).toBe(true);
    expect(pager.events).toEqual([]);
    expect(chat.calls).toEqual([posted(breach('breach')), posted(met('met again'))]);
  });
});

describe('RpoWatch', () => {
  const NOW = new Date('2026-05-01T12:00:00Z');
  const MIN = 60_000;

  function setup(stagingStore: BackupStore, productionStore: BackupStore = new MemoryStore('memory://production/')) {
    const pager = new MemoryPager();
    const chat = new MemoryChat();
    const alerts = desk(pager, chat);
    const readings: RpoReading[] = [];
    const stores = new Map<string, BackupStore>([
      [STAGING_STORE, stagingStore],
      [PRODUCTION_STORE, productionStore],
    ]);
    const watch = new RpoWatch({
      file,
      storeFor: (url) => {
        const store = stores.get(url);
        if (!store) throw new Error(`no store for ${url}`);
        return store;
      },
      alerts,
      observe: (reading) => readings.push(reading),
      log,
    });
    return { pager, chat, alerts, readings, watch };
  }

  const backupAt = (minutesAgo: number): string =>
    backupFileName(STAGING_PREFIX, new Date(NOW.getTime() - minutesAgo * MIN));

  test('an empty store is overdue: the rpo alert is raised once, paged and posted', async () => {
    const store = new MemoryStore('memory://staging/');
    const { pager, chat, alerts, readings, watch } = setup(store);
    const reading = await watch.check('staging', NOW);
    expect(reading).toEqual({ env: 'staging', newest: undefined, overdue: true });
    expect(readings).toEqual([reading]);
    expect(await alerts.isOpen('rpo', 'staging')).toBe(true);
    expect(pager.events).toHaveLength(1);
    expect(pager.events[0]).toMatchObject({
      action: 'trigger',
      dedupKey: 'lifeline-rpo-staging',
      routingKey: ONCALL_KEY,
      payload: { severity: 'warning' },
    });
    expect(pager.events[0]?.payload?.summary).toContain('there is no backup of staging in memory://staging/');
    expect(chat.calls).toHaveLength(1);
    expect(chat.calls[0]?.message.text).toContain('/dr backup staging');
    // Checked again a minute later: still overdue, nothing sent twice.
    await watch.check('staging', new Date(NOW.getTime() + MIN));
    expect(pager.events).toHaveLength(1);
    expect(chat.calls).toHaveLength(1);
    expect(readings).toHaveLength(2);
  });

  test('a fresh backup clears the open alert: one resolve, one post, the row gone', async () => {
    const store = new MemoryStore('memory://staging/');
    const { pager, chat, alerts, watch } = setup(store);
    await watch.check('staging', NOW);
    const name = backupAt(5);
    await store.write(name, Readable.from(['a backup']));
    const reading = await watch.check('staging', NOW);
    expect(reading).toEqual({
      env: 'staging',
      newest: { name, takenAt: new Date(NOW.getTime() - 5 * MIN) },
      overdue: false,
    });
    expect(pager.events.map((e) => e.action)).toEqual(['trigger', 'resolve']);
    expect(chat.calls).toHaveLength(2);
    expect(chat.calls[1]?.message.text).toContain(`RPO of staging met again: ${name}`);
    expect(await alerts.isOpen('rpo', 'staging')).toBe(false);
    expect(await rows()).toEqual([]);
  });

  test('Slack down during a breach: the watch keeps trying to post, but on-call is paged once, not every minute', async () => {
    const { pager, chat, watch } = setup(new MemoryStore('memory://staging/'));
    for (let minute = 0; minute < 3; minute++) {
      chat.failNext(new TransientError('Slack unreachable'));
      await watch.check('staging', new Date(NOW.getTime() + minute * MIN)).catch(() => undefined);
    }
    await watch.check('staging', new Date(NOW.getTime() + 3 * MIN));
    expect(chat.calls).toHaveLength(1);
    expect(pager.events.map((e) => e.action)).toEqual(['trigger']);
  });

  test('a fresh backup with no alert open sends nothing', async () => {
    const store = new MemoryStore('memory://staging/').put(backupAt(1), 'x');
    const { pager, chat, watch } = setup(store);
    expect((await watch.check('staging', NOW)).overdue).toBe(false);
    expect(pager.events).toEqual([]);
    expect(chat.calls).toEqual([]);
    expect(await rows()).toEqual([]);
  });

  test('a safety copy alone does not count, nor do sidecars, other prefixes and other files', async () => {
    const fresh = new Date(NOW.getTime() - MIN);
    const store = new MemoryStore('memory://staging/')
      .put(safetyCopyFileName(STAGING_PREFIX, fresh), 'safety copy')
      .put(`${backupAt(1)}.sha256`, 'sidecar')
      .put(backupFileName('prod_app', fresh), 'another env')
      .put('notes.txt', 'x');
    const { pager, watch } = setup(store);
    const reading = await watch.check('staging', NOW);
    expect(reading).toEqual({ env: 'staging', newest: undefined, overdue: true });
    expect(pager.events).toHaveLength(1);
  });

  test('a backup older than the RPO is overdue and named in the page; exactly at the RPO it is not', async () => {
    const atLimit = new MemoryStore('memory://staging/').put(backupAt(60), 'x');
    const limit = setup(atLimit);
    expect((await limit.watch.check('staging', NOW)).overdue).toBe(false);
    expect(limit.pager.events).toEqual([]);
    expect((await limit.watch.check('staging', new Date(NOW.getTime() + 1000))).overdue).toBe(true);
    expect(limit.pager.events).toHaveLength(1);
    expect(limit.pager.events[0]?.payload?.summary).toContain(`the newest backup of staging (${backupAt(60)},`);
    expect(limit.pager.events[0]?.payload?.summary).toMatch(/the RPO is /);
  });

  test('an unknown environment is an error and sends nothing', async () => {
    const { pager, chat, watch } = setup(new MemoryStore('memory://staging/'));
    await expect(watch.check('nope', NOW)).rejects.toThrow('unknown environment nope');
    expect(pager.events).toEqual([]);
    expect(chat.calls).toEqual([]);
    expect(await rows()).toEqual([]);
  });

  test('checkAll: one env whose store cannot be listed does not stop the others', async () => {
    const broken: BackupStore = {
      location: 'memory://broken/',
      list: () => Promise.reject(new Error('store unreachable')),
      read: () => Promise.reject(new Error('unused')),
      write: () => Promise.reject(new Error('unused')),
      remove: () => Promise.reject(new Error('unused')),
      rename: () => Promise.reject(new Error('unused')),
    };
    const { pager, readings, watch } = setup(new MemoryStore('memory://staging/').put(backupAt(10), 'x'), broken);
    const result = await watch.checkAll(NOW);
    expect(result).toEqual([
      { env: 'staging', newest: { name: backupAt(10), takenAt: new Date(NOW.getTime() - 10 * MIN) }, overdue: false },
    ]);
    expect(readings).toEqual(result);
    expect(pager.events).toEqual([]);
    expect(logLines.join('\n')).toMatch(/RPO watch could not check this environment/);
    expect(logLines.join('\n')).toContain('production');
  });
});
