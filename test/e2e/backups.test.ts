// Backups, the RPO watch and restore drills end to end: signed Slack requests into the real process
// (node dist/main.js), the real PostgreSQL and Redis behind it, fake Slack and PagerDuty at the HTTP boundary.
//
// Part one: file:// stores in temp folders and one process (restarted once). An empty store and a stale one raise
// one RPO alert each (a newer safety copy does not count), which survives a restart and clears on a fresh backup;
// `/dr backup` writes a checked custom-format dump with its sidecar and catalogue row, which pg_restore turns back
// into the same rows; retention keeps the newest backup and the newest one that passed a drill; drills of a good
// and of a truncated backup; `/dr backups`; /metrics; refusals that change nothing.
//
// Part two: an S3 store on the fake S3 (multipart: the dump is about 8 MB) and a 4 s `schedule` with two Lifeline
// processes: one backup per slot, quiet success lines, a failed UploadPart that leaves nothing under a backup name,
// is announced loudly and pages on-call (warning), and is resolved by the next good backup.
import { parseBackupName } from '../../src/domain/backups/names.js';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ADMIN_URL } from '../support/db.js';
import { allText, EMERGENCY, linesWithSecrets, stillAfter, World, type Sent } from '../support/e2e.js';
import type { PagerDutyEvent } from '../../src/adapters/pagerduty/stand-in.js';
import { S3StandIn } from '../../src/adapters/backup-store/stand-in.js';
import { apiText } from '../../src/delivery/api/job-view.js';
import type { Said } from '../../src/shared/text.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import type { LifelineProcess } from '../support/lifeline-process.js';
import { ROUTING_KEYS, USERS } from '../support/lifeline-process.js';
import {
  auditCount,
  auditOf,
  AwsTripwire,
  backupName,
  buttonsOf,
  createAppDatabase,
  dumpCustom,
  finished,
  jobCount,
  jobNumberIn,
  jobRow,
  leaks,
  NO_LEAKS,
  pgRestoreList,
  planPost,
  replyJob,
  resultOf,
  resultText,
  stepRows,
  storeFiles,
  withClient,
  writeGzip,
  type AppDatabase,
} from '../support/recovery.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 60_000 });

const run = promisify(execFile);
const DAY = 86_400_000;
const STEPS = ['pg_dump into the store', 'check the stored backup', 'retention'];
/** A formatDuration() of less than an hour: "42 s", "3 min", "1 min 5 s". */
const SHORT = '(?:\\d+ min(?: \\d+ s)?|\\d+ s)';
const DRILL_STEPS = [
  'preflight: latest backup readable',
  'restore into a scratch database',
  'checks: verify queries and row counts',
  'drop the scratch database',
];

// ---- helpers shared by both parts
// ------------------------------------------------------------------------------------

function dr(
  w: World,
  text: string,
  options: { user?: string; channel?: string; via?: LifelineProcess } = {},
): Promise<Sent> {
  return w.command(
    text,
    {
      user: options.user ?? USERS.oncall,
      ...(options.channel ? { channel: options.channel } : {}),
      ...(options.via ? { via: options.via } : {}),
    },
    '/dr',
  );
}

/** Sends `/dr <text>` that must start a job; returns the job number named in the private reply. */
async function startJob(
  w: World,
  text: string,
  user: string = USERS.oncall,
): Promise<{ job: number; sent: Sent; reply: string }> {
  const sent = await dr(w, text, { user });
  expect(sent.status).toBe(200);
  return { ...(await replyJob(w, sent)), sent };
}

/** Every message (top level or in a thread) that names JOB-n. */
function postsNaming(w: World, job: number): SlackCall[] {
  const re = new RegExp(`\\bJOB-${job}\\b`);
  return w.slack.posts().filter((c) => re.test(allText(c.body)));
}

function pdEvents(w: World, key: string, action?: PagerDutyEvent['event_action']): PagerDutyEvent[] {
  return w.pd.events.filter((e) => e.dedup_key === key && (action === undefined || e.event_action === action));
}

function sha256Of(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function urlOf(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One sample of a Prometheus text exposition, by metric name and env label. */
function metricValue(text: string, name: string, env: string): number | undefined {
  const match = new RegExp(`^${name}\\{[^}]*env="${env}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

interface CatalogueRow {
  readonly name: string;
  readonly env: string;
  readonly job: number | null;
  readonly size_bytes: string;
  readonly sha256: string;
  readonly table_rows: Record<string, number>;
  readonly checked_at: Date | null;
  readonly deleted_at: Date | null;
}

async function catalogue(w: World, env: string): Promise<CatalogueRow[]> {
  const { rows } = await w.sql.query<CatalogueRow>(
    'SELECT name, env, job, size_bytes, sha256, table_rows, checked_at, deleted_at FROM backups WHERE env = $1 ORDER BY id',
    [env],
  );
  return rows;
}

// =====================================================================================================================
// Part one: file stores, one process
// =====================================================================================================================

describe('backups, the RPO watch and drills (file:// stores)', () => {
  const ROWS = 500;
  const ORDERS = 1234;
  const now = Date.now();
  // stale: only old backups (the newest 2 h old against a 30 min RPO), a newer safety copy, and a file that is not a
  // backup.
  const S2H = backupName('stale', new Date(now - 2 * 3_600_000), 'dump');
  const S10 = backupName('stale', new Date(now - 10 * DAY), 'sql.gz');
  const S12 = backupName('stale', new Date(now - 12 * DAY), 'dump');
  const S15 = backupName('stale', new Date(now - 15 * DAY), 'dump');
  const S20 = backupName('stale', new Date(now - 20 * DAY), 'dump');
  const SAFETY = backupName('stale_pre-restore', new Date(now - 60_000), 'dump');
  const NOTES = 'README.txt';

  let w: World;
  let app: AppDatabase;
  let aws: AwsTripwire;
  let prodStore: string;
  let staleStore: string;
  let scratch: string; // the process's TMPDIR
  let usersPrint: string;
  let ordersPrint: string;
  let firstBackup: { job: number; name: string; sent: Sent } | undefined;
  let drilledBackup: string | undefined;

  const ordersFingerprint = () =>
    withClient(
      app.url,
      async (c) =>
        (
          await c.query<{ h: string }>(
            `SELECT md5(string_agg(id || ',' || user_id || ',' || total, ';' ORDER BY id)) AS h FROM orders`,
          )
        ).rows[0]!.h,
    );

  beforeAll(async () => {
    app = await createAppDatabase(ROWS);
    await app.query(
      `CREATE TABLE orders (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES users (id), total numeric(10, 2) NOT NULL);
       INSERT INTO orders SELECT g, 1 + g % ${ROWS}, (g % 97) * 1.25 FROM generate_series(1, ${ORDERS}) g;`,
    );
    usersPrint = await app.fingerprint();
    ordersPrint = await ordersFingerprint();
    prodStore = mkdtempSync(join(tmpdir(), 'lifeline-e2e-backups-prod-'));
    staleStore = mkdtempSync(join(tmpdir(), 'lifeline-e2e-backups-stale-'));
    scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-backups-tmp-'));
    for (const name of [S2H, S12, S15, S20, SAFETY]) writeFileSync(join(staleStore, name), randomBytes(2048));
    await writeGzip(join(staleStore, S10), 'SELECT 1;\n');
    writeFileSync(join(staleStore, `${S20}.sha256`), `${'0'.repeat(64)}  ${S20}\n`);
    writeFileSync(join(staleStore, NOTES), 'not a backup\n');
    // An old file that is not a backup: retention must leave it alone.
    const longAgo = new Date(now - 40 * DAY);
    utimesSync(join(staleStore, NOTES), longAgo, longAgo);
    aws = await new AwsTripwire().start();
    const environmentsYaml = `  prod:
    database:
      url: "${app.configUrl}"
      verify: [SELECT COUNT(*) FROM users]
    backups: { store: "file://${prodStore}", prefix: shop, retention_days: 7, rpo_minutes: 60, drill_schedule: "off" }
  stale:
    database: { url: "${app.configUrl}", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "file://${staleStore}", prefix: stale, retention_days: 7, rpo_minutes: 30, drill_schedule: "off" }`;
    w = await World.create({
      config: { steps: [{ after_minutes: 0, notify: 'oncall' }], environmentsYaml },
      extraEnv: { ...aws.env(), TMPDIR: scratch, LIFELINE_RPO_WATCH_SECONDS: '1' },
    });
    await w.process().start();
  });

  afterAll(async () => {
    await w?.close();
    await aws?.stop();
    await app?.drop();
    for (const folder of [prodStore, staleStore, scratch]) if (folder) rmSync(folder, { recursive: true, force: true });
  });

  /** Top-level posts in #emergency saying an env's RPO is breached / met again. */
  const breachPosts = (env: string) =>
    w.topLevelPosts().filter((c) => new RegExp(`RPO breach: .*\\bof ${env}\\b`).test(allText(c.body)));
  const metPosts = (env: string) =>
    w.topLevelPosts().filter((c) => allText(c.body).includes(`RPO of ${env} met again`));

  async function state(): Promise<string> {
    return JSON.stringify({
      jobs: await jobCount(w),
      audit: await auditCount(w),
      backups: await catalogue(w, 'prod'),
      posts: w.slack.posts().length,
      updates: w.slack.updates().length,
      pd: w.pd.events.length,
      prod: await storeFiles(prodStore),
      stale: await storeFiles(staleStore),
    });
  }

  /** A /dr command refused to its sender alone, within Slack's 3 s, with the usage, changing nothing. */
  async function refused(text: string, options: { user?: string; channel?: string } = {}): Promise<string> {
    const before = await state();
    const responses = w.slack.responses.length;
    const sent = await dr(w, text, options);
    expect(sent.status).toBe(200);
    const reply = await w.reply(sent, 5_000);
    expect(w.replyDelay(sent), 'the refusal arrives within Slack’s 3 s').toBeLessThan(3_000);
    expect(reply, 'the usage is shown').toMatch(/\/dr (backup|backups|drill)\b/);
    await stillAfter(`"/dr ${text}" to record and start nothing`, async () => (await state()) === before, 700);
    expect(w.replies(sent)).toHaveLength(1);
    expect(w.privateMessages(sent).every((m) => m.text === reply)).toBe(true);
    expect(w.slack.responses.slice(responses).every((r) => r.id === sent.responseId)).toBe(true);
    return reply;
  }

  test('RPO watch: an empty store and a stale one (a newer safety copy does not count) page once each, survive a restart, and a fresh backup resolves', async () => {
    const prodKey = 'lifeline-rpo-prod';
    const staleKey = 'lifeline-rpo-stale';
    await waitUntil(
      'an RPO page for each env',
      () => pdEvents(w, prodKey, 'trigger').length > 0 && pdEvents(w, staleKey, 'trigger').length > 0,
      15_000,
    );
    await waitUntil(
      'an RPO post for each env',
      () => breachPosts('prod').length > 0 && breachPosts('stale').length > 0,
    );
    // LIFELINE_RPO_WATCH_SECONDS=1: several more ticks find both still overdue, and say nothing new.
    const once = () =>
      pdEvents(w, prodKey).length === 1 &&
      pdEvents(w, staleKey).length === 1 &&
      breachPosts('prod').length === 1 &&
      breachPosts('stale').length === 1;
    await stillAfter('one page and one post per env across ticks', once, 3_500);
    for (const key of [prodKey, staleKey]) {
      const [page] = pdEvents(w, key);
      expect(page).toMatchObject({ event_action: 'trigger', routing_key: ROUTING_KEYS.oncall, dedup_key: key });
      expect(page!.payload?.severity).toBe('warning');
      expect(page!.payload?.summary).toMatch(/RPO breach/);
    }
    const prodPost = allText(breachPosts('prod')[0]!.body);
    expect(prodPost).toMatch(/no backup of prod/);
    const stalePost = allText(breachPosts('stale')[0]!.body);
    expect(stalePost).toContain(S2H);
    expect(stalePost).toMatch(/\b2 h\b/);
    expect(stalePost).not.toContain(SAFETY);
    expect(pdEvents(w, staleKey)[0]!.payload?.summary).toContain(S2H);
    const open = await w.sql.query<{ dedup_key: string; kind: string }>(
      'SELECT dedup_key, kind FROM open_alerts ORDER BY dedup_key',
    );
    expect(open.rows).toEqual([
      { dedup_key: prodKey, kind: 'rpo' },
      { dedup_key: staleKey, kind: 'rpo' },
    ]);

    // The open alerts survive a restart: the new process's ticks neither page nor post again.
    await w.lifeline.stop('SIGTERM');
    await w.process().start();
    await stillAfter('no second page or post after the restart', once, 3_000);

    // A fresh backup of prod: its retention step re-checks at once; one resolve, one "met again" post.
    const { job, sent } = await startJob(w, 'backup prod');
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const name = (await catalogue(w, 'prod'))[0]?.name ?? '';
    firstBackup = { job, name, sent };
    await waitUntil('the resolve of the prod RPO page', () => pdEvents(w, prodKey, 'resolve').length > 0);
    await waitUntil('the "met again" post', () => metPosts('prod').length > 0);
    await stillAfter(
      'one resolve and one post; stale still open',
      () =>
        pdEvents(w, prodKey, 'trigger').length === 1 &&
        pdEvents(w, prodKey, 'resolve').length === 1 &&
        metPosts('prod').length === 1 &&
        pdEvents(w, staleKey).length === 1 &&
        metPosts('stale').length === 0,
      2_000,
    );
    expect(pdEvents(w, prodKey, 'resolve')[0]).toMatchObject({ routing_key: ROUTING_KEYS.oncall });
    expect(allText(metPosts('prod')[0]!.body)).toContain(name);
    expect((await w.sql.query<{ dedup_key: string }>('SELECT dedup_key FROM open_alerts')).rows).toEqual([
      { dedup_key: staleKey },
    ]);
  });

  test('`/dr backup prod`: no approval; plan, steps, a checked .dump with its sha256 sidecar, a catalogue row with exact row counts, the result in the thread', async () => {
    expect(firstBackup, 'the backup of the previous test').toBeDefined();
    const { job, name, sent } = firstBackup!;
    expect(name).toMatch(/^shop_\d{8}_\d{6}\.dump$/);
    expect(await w.reply(sent)).toMatch(new RegExp(`JOB-${job}: backup of prod requested`));
    const row = await jobRow(w, job);
    expect(row).toMatchObject({ state: 'succeeded', requested_by: USERS.oncall, decided_by: null });

    // The name carries the UTC time the dump started.
    const takenAt = parseBackupName('shop', name)!.takenAt.getTime();
    expect(takenAt).toBeGreaterThanOrEqual(Math.floor(sent.sentAt / 1000) * 1000);
    expect(takenAt).toBeLessThanOrEqual(Date.now());

    // The plan, without buttons, in #emergency; the result as a reply in its thread.
    const plan = planPost(w, job)!;
    expect(plan, 'a plan message').toBeDefined();
    expect(buttonsOf(plan.body)).toEqual([]);
    expect(allText(plan.body)).toContain(`file://${prodStore}`);
    expect(allText(plan.body)).toMatch(/retention/i);
    const result = await resultText(w, job);
    expect(resultOf(w, job)!.body.thread_ts).toBe(plan.result?.ts);
    expect(String(resultOf(w, job)!.body.text)).toMatch(
      new RegExp(`^JOB-${job} succeeded: Backed up prod: ${escapeRe(name)} \\(`),
    );
    expect(result).toMatch(/sha256 [0-9a-f]{12}/);
    expect((await stepRows(w, job)).map((s) => [s.name, s.state])).toEqual(STEPS.map((s) => [s, 'succeeded']));

    // In the store: the dump (pg_dump custom format) and `<name>.sha256` in sha256sum's format; nothing else.
    expect(await storeFiles(prodStore)).toEqual([name, `${name}.sha256`]);
    const data = readFileSync(join(prodStore, name));
    expect(data.subarray(0, 5).toString('latin1')).toBe('PGDMP');
    const sha = sha256Of(data);
    expect(readFileSync(join(prodStore, `${name}.sha256`), 'utf8')).toBe(`${sha}  ${name}\n`);
    expect(await pgRestoreList(join(prodStore, name))).toMatch(/TABLE DATA public orders/);

    // The catalogue: size, checksum, exact row counts per table, checked.
    const [entry] = await catalogue(w, 'prod');
    expect(entry).toMatchObject({ name, env: 'prod', job, sha256: sha, deleted_at: null });
    expect(Number(entry!.size_bytes)).toBe(data.length);
    expect(entry!.table_rows).toEqual({ 'public.orders': ORDERS, 'public.users': ROWS });
    expect(entry!.checked_at).not.toBeNull();

    const audit = await auditOf(w, job);
    expect(audit[0]).toMatchObject({ action: 'requested', actor: USERS.oncall });
    expect(audit.map((a) => a.action)).not.toContain('approved');
    expect(audit.at(-1)?.action).toBe('succeeded');
    expect(await app.fingerprint()).toBe(usersPrint);
  });

  test('the file round-trips: pg_restore into a new database gives back the source’s rows', async () => {
    const name = firstBackup!.name;
    const copy = `${app.name}_roundtrip`;
    await withClient(ADMIN_URL, (c) => c.query(`CREATE DATABASE ${copy}`));
    try {
      await run('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${urlOf(copy)}`, join(prodStore, name)]);
      const restored = await withClient(urlOf(copy), async (c) => {
        const users = await c.query<{ n: string; h: string }>(
          `SELECT count(*) AS n, md5(coalesce(string_agg(id || ',' || email || ',' || created_at, ';' ORDER BY id), '')) AS h FROM users`,
        );
        const orders = await c.query<{ n: string; h: string }>(
          `SELECT count(*) AS n, md5(string_agg(id || ',' || user_id || ',' || total, ';' ORDER BY id)) AS h FROM orders`,
        );
        return { users: users.rows[0]!, orders: orders.rows[0]! };
      });
      expect(Number(restored.users.n)).toBe(ROWS);
      expect(Number(restored.orders.n)).toBe(ORDERS);
      expect(restored.users.h).toBe(usersPrint);
      expect(restored.orders.h).toBe(ordersPrint);
    } finally {
      await withClient(ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${copy} WITH (FORCE)`));
    }
  });

  test('refusals: unknown env, no env, trailing words, a channel not allowed: to the sender alone, nothing started or written', async () => {
    expect(await refused('backup nosuchenv')).toMatch(/Unknown environment "nosuchenv".*prod/);
    expect(await refused('backup')).toMatch(/Name the environment/);
    expect(await refused('drill prod extra')).toMatch(/"extra"/);
    const elsewhere = await refused('backups prod', { channel: 'C0RANDOM', user: USERS.other });
    expect(elsewhere).toMatch(/channel/i);
    expect(elsewhere).toContain(EMERGENCY);
  });

  test('a second `/dr backup prod` while one is active is refused to its sender ("one job at a time"); one job, one new backup', async () => {
    const jobs = await jobCount(w);
    const files = await storeFiles(prodStore);
    const [a, b] = await Promise.all([
      dr(w, 'backup prod', { user: USERS.lead }),
      dr(w, 'backup prod', { user: USERS.oncall }),
    ]);
    const replies = await Promise.all([w.reply(a), w.reply(b)]);
    const accepted = /^JOB-\d+: backup of prod requested\./;
    const started = replies
      .map((r) => (accepted.test(r) ? jobNumberIn(r) : undefined))
      .filter((n): n is number => n !== undefined);
    expect(started, replies.join('\n')).toHaveLength(1);
    const job = started[0]!;
    const refusal = replies.find((r) => !accepted.test(r))!;
    expect(refusal).toMatch(/one job at a time/);
    expect(refusal).toContain(`JOB-${job}`);
    const refusedSent = replies[0] === refusal ? a : b;
    expect(w.replies(refusedSent)).toEqual([refusal]);
    expect(await jobCount(w)).toBe(jobs + 1);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    await stillAfter('no second job', async () => (await jobCount(w)) === jobs + 1, 500);
    const added = (await storeFiles(prodStore)).filter((f) => !files.includes(f));
    expect(added).toHaveLength(2);
    drilledBackup = added.find((f) => f.endsWith('.dump'));
    expect(added).toEqual([drilledBackup, `${drilledBackup}.sha256`]);
  });

  test('retention deletes backups older than retention_days (object and sidecar, audited) but keeps the newest and the newest that passed a drill', async () => {
    const store = `file://${staleStore}`;
    const drill = (name: string, passed: boolean, minutesAgo: number) =>
      w.sql.query(
        `INSERT INTO drills (env, backup_name, store, passed, backup_age_ms, restore_ms, checks, finished_at) VALUES ('stale', $1, $2, $3, 0, 1000, '[]', clock_timestamp() - $4 * interval '1 minute')`,
        [name, store, passed, minutesAgo],
      );
    await drill(S20, true, 300); // passed, but an older backup than S15
    await drill(S15, true, 200); // the newest backup whose last drill passed
    await drill(S12, true, 150);
    await drill(S12, false, 100); // its last drill failed: it is no longer a known-good copy
    // A catalogue entry for one of those to go: retention marks it deleted.
    await w.sql.query(
      `INSERT INTO backups (env, name, store, taken_at, size_bytes, sha256, duration_ms, table_rows, checked_at) VALUES ('stale', $1, $2, now() - interval '20 days', 2048, $3, 10, '{}', now())`,
      [S20, store, '0'.repeat(64)],
    );

    const { job } = await startJob(w, 'backup stale', USERS.oncall);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const fresh = (await catalogue(w, 'stale')).find((r) => r.job === job)!.name;

    const files = await storeFiles(staleStore);
    expect(files).toEqual([NOTES, S15, S2H, fresh, `${fresh}.sha256`, SAFETY].sort());
    for (const gone of [S20, `${S20}.sha256`, S12, S10]) expect(files).not.toContain(gone);

    const deletions = (await auditOf(w, job)).filter((a) => a.action === 'backup_deleted');
    expect(deletions.map((d) => d.detail.split(':')[0]).sort()).toEqual([S10, S12, S20].sort());
    for (const d of deletions) expect(d).toMatchObject({ actor: 'lifeline' });
    for (const d of deletions) expect(d.detail).toMatch(/older than 7 days/);
    const retention = (await stepRows(w, job)).find((s) => s.name === 'retention')!;
    expect(retention.detail).toContain(`kept ${S15} (the newest backup that passed a drill)`);
    expect((await catalogue(w, 'stale')).find((r) => r.name === S20)?.deleted_at).not.toBeNull();

    // The fresh backup also clears the stale env's RPO alert: one resolve, one post.
    await waitUntil('the resolve of the stale RPO page', () => pdEvents(w, 'lifeline-rpo-stale', 'resolve').length > 0);
    await stillAfter(
      'one resolve',
      () => pdEvents(w, 'lifeline-rpo-stale', 'resolve').length === 1 && metPosts('stale').length === 1,
      1_200,
    );
  });

  test('`/dr drill prod`: the latest backup restored into a scratch database, checked, dropped; RPO and RTO reported; prod untouched', async () => {
    expect(drilledBackup, 'the backup of the earlier test').toBeDefined();
    const scratchName = new RegExp(`^${escapeRe(app.name)}_restore_\\d{14}_[0-9a-f]{4}$`);
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const n of await app.leftovers()) seen.add(n);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const job = await (async () => {
      try {
        const started = (await startJob(w, 'drill prod')).job;
        const end = await finished(w, started);
        expect(end.state, end.outcome ?? '').toBe('succeeded');
        return started;
      } finally {
        watching = false;
        await watcher;
      }
    })();
    expect([...seen], 'the scratch database existed while the drill ran').toHaveLength(1);
    expect([...seen][0]).toMatch(scratchName);
    expect(await app.leftovers()).toEqual([]);
    expect(await app.fingerprint()).toBe(usersPrint);
    expect(await ordersFingerprint()).toBe(ordersPrint);

    const plan = planPost(w, job)!;
    expect(plan, 'a plan message').toBeDefined();
    expect(buttonsOf(plan.body)).toEqual([]);
    expect(allText(plan.body)).toContain(drilledBackup!);
    expect(allText(plan.body)).toContain(
      'Checks: its SHA-256 against the catalogue, the verify queries (`SELECT COUNT(*) FROM users`), and each table',
    );
    expect((await stepRows(w, job)).map((s) => [s.name, s.state])).toEqual(DRILL_STEPS.map((s) => [s, 'succeeded']));

    const result = await resultText(w, job);
    expect(resultOf(w, job)!.body.thread_ts).toBe(plan.result?.ts);
    expect(result).toContain(`JOB-${job} succeeded`);
    expect(result).toContain(drilledBackup!);
    expect(result).toMatch(new RegExp(`RPO achieved \\(the backup's age\\): ${SHORT}, target 1 h: met`));
    expect(result).toMatch(new RegExp(`RTO achieved \\(fetch and restore\\): ${SHORT}, target 1 h: met`));
    expect(result).toContain(`✓ \`SELECT COUNT(*) FROM users\` → \`${ROWS}\``);
    expect(result).toContain(
      `✓ row counts: all 2 tables match the backup (${(ROWS + ORDERS).toLocaleString('en-US')} rows)`,
    );

    const { rows } = await w.sql.query<{
      backup_name: string;
      passed: boolean;
      restore_ms: number | null;
      env: string;
    }>('SELECT backup_name, passed, restore_ms, env FROM drills WHERE job = $1', [job]);
    expect(rows).toEqual([{ backup_name: drilledBackup, passed: true, restore_ms: expect.any(Number), env: 'prod' }]);
    expect(readdirSync(scratch), 'the drill leaves nothing in the temp folder').toEqual([]);
  });

  test('a drill of a truncated latest backup fails in the restore, says so, and leaves no scratch database; prod untouched', async () => {
    const source = readFileSync(join(prodStore, drilledBackup!));
    const newest = Math.max(
      ...(await storeFiles(prodStore))
        .filter((f) => f.endsWith('.dump'))
        .map((f) => {
          const m = /_(\d{8})_(\d{6})\.dump$/.exec(f)!;
          return Date.UTC(
            +m[1]!.slice(0, 4),
            +m[1]!.slice(4, 6) - 1,
            +m[1]!.slice(6, 8),
            +m[2]!.slice(0, 2),
            +m[2]!.slice(2, 4),
            +m[2]!.slice(4, 6),
          );
        }),
    );
    const corrupt = backupName('shop', new Date(Math.max(Date.now(), newest + 1_000)), 'dump');
    writeFileSync(join(prodStore, corrupt), source.subarray(0, Math.floor(source.length * 0.6)));
    // Its table of contents still reads: the damage shows only when the data is restored.
    expect(await pgRestoreList(join(prodStore, corrupt))).toMatch(/TABLE DATA public users/);

    const { job } = await startJob(w, 'drill prod');
    const end = await finished(w, job);
    expect(end.state).toBe('failed');
    const result = await resultText(w, job);
    expect(String(resultOf(w, job)!.body.text)).toMatch(new RegExp(`^JOB-${job} failed`));
    expect(result).toContain(corrupt);
    expect(result).toMatch(/restore into a scratch database/);
    expect(result).toMatch(/prod's own database was not touched/);
    expect((await stepRows(w, job)).map((s) => [s.name, s.state])).toEqual([
      [DRILL_STEPS[0], 'succeeded'],
      [DRILL_STEPS[1], 'failed'],
    ]);
    expect(await app.leftovers()).toEqual([]);
    expect(await app.fingerprint()).toBe(usersPrint);
    expect(await ordersFingerprint()).toBe(ordersPrint);
    const { rows } = await w.sql.query<{ backup_name: string; passed: boolean }>(
      'SELECT backup_name, passed FROM drills WHERE job = $1',
      [job],
    );
    expect(rows).toEqual([{ backup_name: corrupt, passed: false }]);
    expect(readdirSync(scratch)).toEqual([]);
  });

  test('`/dr backups prod` answers the sender alone: each backup with age, size, checksum status and drill; the last drill', async () => {
    const posts = w.slack.posts().length;
    const jobs = await jobCount(w);
    const sent = await dr(w, 'backups prod', { user: USERS.other });
    const reply = await w.reply(sent, 15_000);
    expect(w.privateMessages(sent).map((m) => m.via)).toEqual(['response_url']);
    expect(w.slack.posts()).toHaveLength(posts);
    expect(await jobCount(w)).toBe(jobs);

    const lines = reply.split('\n');
    const line = (name: string) => lines.find((l) => l.startsWith('• ') && l.includes(`\`${name}\``)) ?? '';
    const entries = new Map((await catalogue(w, 'prod')).map((r) => [r.name, r]));
    const first = firstBackup!.name;
    const dumps = (await storeFiles(prodStore)).filter((f) => f.endsWith('.dump'));
    expect(dumps).toHaveLength(3);
    const corrupt = dumps.find((d) => !entries.has(d))!;
    expect(line(first)).toContain(`sha256 ${entries.get(first)!.sha256.slice(0, 12)} checked`);
    expect(line(first)).not.toMatch(/drill/);
    expect(line(drilledBackup!)).toContain(`sha256 ${entries.get(drilledBackup!)!.sha256.slice(0, 12)} checked`);
    expect(line(drilledBackup!)).toMatch(/drill passed/);
    expect(line(corrupt)).toContain('no checksum (not taken by Lifeline)');
    expect(line(corrupt)).toMatch(/drill \*failed\*/);
    for (const name of dumps) expect(line(name)).toMatch(new RegExp(`${SHORT} old, \\d+\\.\\d KB`));
    expect(reply).toMatch(new RegExp(`Last drill: .*failed.* with \`${escapeRe(corrupt)}\``));
    expect(reply.indexOf(corrupt)).toBeLessThan(reply.indexOf(drilledBackup!));
    expect(reply.indexOf(drilledBackup!)).toBeLessThan(reply.indexOf(first));
    expect(reply).not.toContain('.sha256`');
  });

  test('/metrics: newest backup age, last backup duration and size, last drill result and restore time', async () => {
    const text = await waitUntil('the backup metrics', async () => {
      const body = await (await fetch(`${w.lifeline.baseUrl}/metrics`)).text();
      return metricValue(body, 'lifeline_backup_newest_age_seconds', 'prod') !== undefined ? body : undefined;
    });
    expect(metricValue(text, 'lifeline_backup_newest_age_seconds', 'prod')).toBeLessThan(120);
    expect(metricValue(text, 'lifeline_backup_newest_age_seconds', 'stale')).toBeLessThan(120);
    const stale = (await catalogue(w, 'stale')).filter((r) => r.job !== null).at(-1)!;
    expect(metricValue(text, 'lifeline_backup_size_bytes', 'stale')).toBe(Number(stale.size_bytes));
    expect(metricValue(text, 'lifeline_backup_duration_seconds', 'stale')).toBeGreaterThan(0);
    expect(metricValue(text, 'lifeline_drill_last_passed', 'prod')).toBe(0);
    expect(metricValue(text, 'lifeline_drill_restore_seconds', 'prod')).toBeGreaterThan(0);
  });

  test('a drill of a backup not taken by Lifeline passes, but its headline says which checks were skipped and why; /metrics counts no full pass', async () => {
    const times = (await storeFiles(prodStore)).flatMap((f) => {
      const m = /^shop_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})\.dump$/.exec(f);
      return m ? [Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)] : [];
    });
    const newest = Math.max(...times);
    const elsewhere = backupName('shop', new Date(Math.max(Date.now(), newest + 1_000)), 'dump');
    await dumpCustom(app.url, join(prodStore, elsewhere));

    const { job } = await startJob(w, 'drill prod');
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const headline =
      `Restore drill of prod passed with ${elsewhere}, but 2 checks were skipped: ` +
      'checksum and row counts (the backup was not taken by Lifeline, so none were recorded).';
    expect(end.outcome).toBe(headline);
    const result = await resultText(w, job);
    expect(String(resultOf(w, job)!.body.text)).toBe(`JOB-${job} succeeded: ${headline}`);
    expect(result).toContain(`:warning: *JOB-${job} succeeded: `);
    expect(result).toContain('– checksum: skipped (the backup was not taken by Lifeline, so none were recorded)');
    expect(result).toContain('– row counts: skipped (the backup was not taken by Lifeline, so none were recorded)');
    expect(result).toContain(`✓ \`SELECT COUNT(*) FROM users\` → \`${ROWS}\``);
    const { rows } = await w.sql.query<{ passed: boolean; skipped: string[] }>(
      `SELECT passed, ARRAY(SELECT c->>'check' FROM jsonb_array_elements(skipped_checks) c) AS skipped
         FROM drills WHERE job = $1`,
      [job],
    );
    expect(rows).toEqual([{ passed: true, skipped: ['checksum', 'row counts'] }]);
    const text = await waitUntil('the drill in /metrics', async () => {
      const body = await (await fetch(`${w.lifeline.baseUrl}/metrics`)).text();
      return metricValue(body, 'lifeline_drill_last_skipped_checks', 'prod') === 2 ? body : undefined;
    });
    expect(metricValue(text, 'lifeline_drill_last_passed', 'prod')).toBe(0);
    expect(await app.leftovers()).toEqual([]);
    expect(await app.fingerprint()).toBe(usersPrint);
  });

  test('no Slack message or log line carries the database password or another secret; no AWS call', () => {
    expect(leaks(w, app, aws)).toEqual(NO_LEAKS);
  });
});

// =====================================================================================================================
// Part two: a schedule, two processes, an S3 store with multipart uploads
// =====================================================================================================================

describe('scheduled backups into S3 with two Lifeline processes', () => {
  const BUCKET = 'lifeline-backups';
  const SLOT_MS = 4_000;
  const FAILED_KEY = 'lifeline-backup-failed-sched';
  let w: World;
  let app: AppDatabase;
  let s3: S3StandIn;
  let aws: AwsTripwire;
  let scratch: string;
  let processes: LifelineProcess[] = [];

  beforeAll(async () => {
    app = await createAppDatabase(50);
    // About 7 MB of incompressible bytes: the dump needs two 5 MiB parts.
    await app.query(
      `CREATE TABLE blobs (id integer PRIMARY KEY, data bytea NOT NULL);
       INSERT INTO blobs SELECT i, (SELECT decode(string_agg(md5(random()::text || i || j), ''), 'hex') FROM generate_series(1, 4096) j) FROM generate_series(1, 110) i;`,
    );
    s3 = await new S3StandIn({ bucket: BUCKET }).start();
    aws = await new AwsTripwire().start();
    scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-backups-tmp-'));
    const environmentsYaml = `  sched:
    database: { url: "${app.configUrl}", verify: [SELECT COUNT(*) FROM users] }
    backups: { store: "s3://${BUCKET}/sched/", prefix: sched, retention_days: 7, rpo_minutes: 60, schedule: "*/4 * * * * *", drill_schedule: "off" }`;
    w = await World.create({
      config: { steps: [{ after_minutes: 0, notify: 'oncall' }], environmentsYaml },
      // Every AWS SDK client goes to the tripwire but S3, which goes to the fake.
      extraEnv: { ...aws.env(), AWS_ENDPOINT_URL_S3: s3.url, TMPDIR: scratch, LIFELINE_RPO_WATCH_SECONDS: '2' },
    });
    processes = [w.process({ role: 'all' }), w.process({ role: 'all' })];
    await Promise.all(processes.map((p) => p.start()));
  });

  afterAll(async () => {
    await w?.close();
    await Promise.allSettled([s3?.stop(), aws?.stop()]);
    await app?.drop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  interface ScheduledJob {
    readonly number: number;
    readonly state: string;
    readonly requested_by: string;
    readonly params: { kind: string; trigger?: string };
    readonly created_at: Date;
    readonly outcome: string | null;
  }

  async function scheduledJobs(): Promise<ScheduledJob[]> {
    const { rows } = await w.sql.query<Omit<ScheduledJob, 'outcome'> & { outcome: Said | null }>(
      `SELECT number, state, requested_by, params, created_at, outcome FROM recovery_jobs WHERE env = 'sched' ORDER BY number`,
    );
    return rows.map((r) => ({ ...r, outcome: r.outcome && apiText(r.outcome) }));
  }

  async function activeJobs(): Promise<number> {
    const { rows } = await w.sql.query<{ n: string }>(
      `SELECT count(*) AS n FROM recovery_jobs WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running')`,
    );
    return Number(rows[0]!.n);
  }

  /** Between slots with no job running: the last slot's job is done and the next slot is at least 0.6 s away. */
  async function quiet(): Promise<void> {
    await waitUntil(
      'a quiet moment between slots',
      async () => {
        const sinceSlot = Date.now() % SLOT_MS;
        return sinceSlot > 1_000 && sinceSlot < SLOT_MS - 600 && (await activeJobs()) === 0;
      },
      20_000,
      50,
    );
  }

  /** The time in a key's backup name (or its sidecar's, or its pending dump's), if it has one. */
  const keyTime = (key: string): number | undefined => {
    const m = /^sched\/sched_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})\.dump(\.sha256|\.pending-[0-9a-f]{8})?$/.exec(
      key,
    );
    return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : undefined;
  };
  const backupKeys = () => [...s3.objects.keys()].filter((k) => /^sched\/sched_\d{8}_\d{6}\.dump$/.test(k)).sort();
  /** The keys a backup's dump was uploaded under before its check: `<name>.pending-<8 hex>`. */
  const pendingKeysOf = (name: string) => [
    ...new Set(s3.calls.map((c) => c.key).filter((k) => k.startsWith(`sched/${name}.pending-`))),
  ];
  const quietLine = (job: number) =>
    w
      .topLevelPosts()
      .filter((c) => String(c.body.text ?? '').startsWith(`:white_check_mark: JOB-${job} Backed up sched: `));

  test('each slot of a 4 s schedule runs one backup however many processes: multipart into S3, checked, one quiet line each, no plan or progress', async () => {
    const done = await waitUntil(
      'three scheduled backups',
      async () => {
        const jobs = (await scheduledJobs()).filter((j) => j.state === 'succeeded');
        return jobs.length >= 3 ? jobs : undefined;
      },
      30_000,
      100,
    );
    await quiet();
    const jobs = await scheduledJobs();
    expect(
      jobs.every((j) => j.requested_by === 'lifeline' && j.params.kind === 'backup' && j.params.trigger === 'schedule'),
    ).toBe(true);
    const slots = jobs.map((j) => Math.floor(j.created_at.getTime() / SLOT_MS));
    const timing = jobs.map((j) => `JOB-${j.number} ${j.created_at.toISOString()} ${j.state}`).join('\n');
    expect(new Set(slots).size, `one job per slot:\n${timing}`).toBe(jobs.length);
    expect(
      slots.slice(1).map((s, i) => s - slots[i]!),
      `no slot skipped:\n${timing}`,
    ).toEqual(slots.slice(1).map(() => 1));
    expect(
      jobs.every((j) => j.state === 'succeeded'),
      timing,
    ).toBe(true);

    // One catalogue row, one object and one sidecar per job; each dump uploaded multipart under its pending name,
    // read back there, and only then copied (server-side) to its backup name.
    const rows = await catalogue(w, 'sched');
    expect(rows.map((r) => r.job)).toEqual(jobs.map((j) => j.number));
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
    expect(backupKeys()).toEqual(rows.map((r) => `sched/${r.name}`).sort());
    for (const r of rows) {
      const data = s3.objects.get(`sched/${r.name}`)!;
      expect(data.length).toBe(Number(r.size_bytes));
      expect(data.length).toBeGreaterThan(5 * 1024 * 1024);
      expect(sha256Of(data)).toBe(r.sha256);
      expect(r.checked_at).not.toBeNull();
      expect(r.table_rows).toEqual({ 'public.blobs': 110, 'public.users': 50 });
      expect(s3.objects.get(`sched/${r.name}.sha256`)?.toString('utf8')).toBe(`${r.sha256}  ${r.name}\n`);
      const pendingKeys = pendingKeysOf(r.name);
      expect(pendingKeys).toHaveLength(1);
      const pending = s3.calls.filter((c) => c.key === pendingKeys[0]);
      expect(pending.filter((c) => c.op === 'CreateMultipartUpload')).toHaveLength(1);
      const parts = pending.filter((c) => c.op === 'UploadPart' && c.status === 200).map((c) => c.partNumber);
      expect(parts.sort()).toEqual([1, 2]);
      expect(pending.filter((c) => c.op === 'CompleteMultipartUpload' && c.status === 200)).toHaveLength(1);
      expect(
        pending.some((c) => c.op === 'GetObject' && c.status === 200),
        'the stored copy was read back',
      ).toBe(true);
      expect(pending.filter((c) => c.op === 'DeleteObject' && c.status === 204)).toHaveLength(1);
      const named = s3.calls.filter((c) => c.key === `sched/${r.name}`);
      expect(named.map((c) => [c.op, c.status])).toEqual([['CopyObject', 200]]);
      const copiedAt = s3.calls.indexOf(named[0]!);
      const readAt = s3.calls.findIndex((c) => c.key === pendingKeys[0] && c.op === 'GetObject' && c.status === 200);
      expect(readAt, 'read back before it got its name').toBeLessThan(copiedAt);
    }
    expect(s3.openUploads()).toEqual([]);

    // Slack: one quiet top-level line per backup; no plan, no progress, no thread, no update.
    for (const j of done) {
      // The result is posted just after the job is marked succeeded.
      const lines = await waitUntil(`the quiet line of JOB-${j.number}`, () =>
        quietLine(j.number).length > 0 ? quietLine(j.number) : undefined,
      );
      expect(lines, `JOB-${j.number}`).toHaveLength(1);
      const name = rows.find((r) => r.job === j.number)!.name;
      expect(String(lines[0]!.body.text)).toContain(name);
      expect(lines[0]!.body.channel).toBe(EMERGENCY);
      expect(postsNaming(w, j.number)).toEqual(lines);
      expect(w.slack.updates().filter((u) => new RegExp(`\\bJOB-${j.number}\\b`).test(allText(u.body)))).toEqual([]);
    }
    expect(w.slack.posts().filter((c) => c.body.thread_ts !== undefined)).toEqual([]);
    expect(pdEvents(w, FAILED_KEY)).toEqual([]);
  });

  test('a backup whose upload fails mid-stream leaves nothing under a backup name, is announced loudly and pages on-call (warning); the next slot resolves it', async () => {
    await quiet();
    const before = await scheduledJobs();
    const keysBefore = backupKeys();
    const mark = s3.calls.length;
    // The next UploadPart is refused for good (no SDK retry): pg_dump is running and the upload has started.
    s3.failures.push({ op: 'UploadPart', status: 403, code: 'AccessDenied' });
    const failed = await waitUntil(
      'a failed scheduled backup',
      async () => (await scheduledJobs()).find((j) => j.number > before.at(-1)!.number && j.state === 'failed'),
      15_000,
      100,
    );
    expect((await stepRows(w, failed.number)).map((s) => [s.name, s.state])).toEqual([[STEPS[0], 'failed']]);
    expect(failed.outcome).toMatch(/AccessDenied|injected failure/);

    // Nothing under a backup name of the failed slot (the next slot's backup may already be on its way), no
    // sidecar, no catalogue row; its multipart upload was started, then aborted, never completed.
    const slotStart = Math.floor(failed.created_at.getTime() / SLOT_MS) * SLOT_MS;
    const ofFailedSlot = (key: string) => {
      const at = keyTime(key);
      return at !== undefined && at >= slotStart - 1_000 && at < slotStart + SLOT_MS;
    };
    const uploads = s3.calls.slice(mark).filter((c) => ofFailedSlot(c.key));
    expect(uploads.filter((c) => c.op === 'CreateMultipartUpload')).toHaveLength(1);
    expect(uploads.filter((c) => c.op === 'UploadPart' && c.status === 403)).toHaveLength(1);
    expect(uploads.filter((c) => c.op === 'AbortMultipartUpload')).toHaveLength(1);
    expect(uploads.filter((c) => c.op === 'CompleteMultipartUpload' || c.op === 'PutObject')).toEqual([]);
    expect(s3.openUploads().filter((u) => ofFailedSlot(u.key))).toEqual([]);
    expect([...s3.objects.keys()].filter(ofFailedSlot)).toEqual([]);
    expect(backupKeys().filter((k) => keysBefore.includes(k))).toEqual(keysBefore);
    expect((await catalogue(w, 'sched')).some((r) => r.job === failed.number)).toBe(false);

    // Loud: a top-level @here post that says it failed; paged once, severity warning, to on-call.
    const loud = await waitUntil('the loud failure post', () =>
      w.topLevelPosts().find((c) => allText(c.body).includes(`JOB-${failed.number} failed`)),
    );
    expect(allText(loud.body)).toContain('<!here>');
    expect(allText(loud.body)).toContain(STEPS[0]);
    expect(quietLine(failed.number)).toEqual([]);
    await waitUntil('the page', () => pdEvents(w, FAILED_KEY, 'trigger').length > 0);
    const [page] = pdEvents(w, FAILED_KEY);
    expect(page).toMatchObject({ event_action: 'trigger', routing_key: ROUTING_KEYS.oncall });
    expect(page!.payload?.severity).toBe('warning');

    // The next slot's backup succeeds and resolves the page, once.
    const next = await waitUntil(
      'the next good backup',
      async () => (await scheduledJobs()).find((j) => j.number > failed.number && j.state === 'succeeded'),
      15_000,
      100,
    );
    await waitUntil('the resolve', () => pdEvents(w, FAILED_KEY, 'resolve').length > 0);
    await waitUntil(`the quiet line of JOB-${next.number}`, () => quietLine(next.number).length > 0);
    expect(quietLine(next.number)).toHaveLength(1);
    await stillAfter(
      'one trigger and one resolve',
      () => pdEvents(w, FAILED_KEY, 'trigger').length === 1 && pdEvents(w, FAILED_KEY, 'resolve').length === 1,
      1_000,
    );
    expect(pdEvents(w, FAILED_KEY).map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
  });

  test('a backup whose read-back fails (S3 answers 500) is removed, never left unchecked to become latest, and the job says so', async () => {
    await quiet();
    const before = await scheduledJobs();
    const mark = s3.calls.length;
    s3.failures.push({ op: 'GetObject', status: 500, code: 'InternalError', times: 3 });
    const failed = await waitUntil(
      'a failed check',
      async () => (await scheduledJobs()).find((j) => j.number > before.at(-1)!.number && j.state === 'failed'),
      15_000,
      100,
    );
    expect((await stepRows(w, failed.number)).map((s) => [s.name, s.state])).toEqual([
      [STEPS[0], 'succeeded'],
      [STEPS[1], 'failed'],
    ]);
    expect(failed.outcome).toMatch(/the unchecked dump .* was removed from the store; nothing is under/);
    expect(failed.outcome).not.toMatch(/No file was left/);
    const row = (await catalogue(w, 'sched')).find((r) => r.job === failed.number)!;
    expect(row.deleted_at).not.toBeNull();
    expect(s3.objects.has(`sched/${row.name}`)).toBe(false);
    expect(s3.objects.has(`sched/${row.name}.sha256`)).toBe(false);
    const [pendingKey] = pendingKeysOf(row.name);
    expect(s3.objects.has(pendingKey!)).toBe(false);
    expect(s3.calls.slice(mark).some((c) => c.op === 'DeleteObject' && c.key === pendingKey)).toBe(true);
    // It never had its backup name, not for a moment.
    expect(s3.calls.filter((c) => c.key === `sched/${row.name}` && c.op !== 'DeleteObject')).toEqual([]);
    await waitUntil(
      'the next good backup',
      async () => (await scheduledJobs()).find((j) => j.number > failed.number && j.state === 'succeeded'),
      15_000,
      100,
    );
  });

  test('over the whole run, with both processes stopped: one job per slot, a catalogue row and an object per good backup, nothing else; no RPO page twice', async () => {
    await quiet();
    await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    const jobs = await scheduledJobs();
    const slots = jobs.map((j) => Math.floor(j.created_at.getTime() / SLOT_MS));
    expect(
      new Set(slots).size,
      jobs.map((j) => `JOB-${j.number} ${j.created_at.toISOString()} ${j.state}`).join('\n'),
    ).toBe(jobs.length);
    const good = jobs.filter((j) => j.state === 'succeeded').map((j) => j.number);
    expect(jobs.filter((j) => j.state === 'failed')).toHaveLength(2);
    const rows = (await catalogue(w, 'sched')).filter((r) => r.deleted_at === null);
    expect(rows.map((r) => r.job).sort((a, b) => a! - b!)).toEqual(good);
    expect(backupKeys()).toEqual(rows.map((r) => `sched/${r.name}`).sort());
    expect([...s3.objects.keys()].sort()).toEqual(
      rows.flatMap((r) => [`sched/${r.name}`, `sched/${r.name}.sha256`]).sort(),
    );
    expect(s3.openUploads()).toEqual([]);
    // The RPO watch of two processes on an empty store: at most one page, resolved as often as it was sent.
    const rpo = 'lifeline-rpo-sched';
    expect(pdEvents(w, rpo, 'trigger').length).toBeLessThanOrEqual(1);
    expect(pdEvents(w, rpo, 'resolve').length).toBe(pdEvents(w, rpo, 'trigger').length);
    expect(aws.calls).toEqual([]);
    expect(linesWithSecrets(w.output())).toEqual([]);
    expect(w.output().filter((l) => l.includes(aws.env().AWS_SECRET_ACCESS_KEY!))).toEqual([]);
  });
});
