// The sandbox as a newcomer meets it: `node dist/sandbox/main.js` (what `npm run sandbox` runs) on free ports with
// its own databases and queue prefix, driven through its page in real headless Chromium (Debian's chromium package
// through playwright-core; nothing downloads a browser). Declare an incident, see the card, acknowledge it as the
// on-call engineer and see PagerDuty's trigger and acknowledge; request a restore as the engineering lead, approve it
// as the CTO, see the job succeed in the plan's thread and the sample database back as it was. The page's screenshot
// is kept as test-artifacts/sandbox.png.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { dropQueuePrefix, TEST_REDIS_URL, uniqueQueuePrefix } from '../support/db.js';
import { freePort } from '../support/lifeline-process.js';
import { waitUntil } from '../support/wait.js';

vi.setConfig({ testTimeout: 180_000 });

const CHROMIUM = process.env.LIFELINE_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SANDBOX_MAIN = fileURLToPath(new URL('../../dist/sandbox/main.js', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PEOPLE = { oncall: 'U0ONCALL', lead: 'U0LEAD', cto: 'U0CTO', dev: 'U0DEV' } as const;

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const stateDb = `lltest_sandbox_state_${suffix}`;
const appDb = `lltest_sandbox_shop_${suffix}`;
const prefix = uniqueQueuePrefix();
const backups = mkdtempSync(join(tmpdir(), 'lifeline-sandbox-test-'));

let sandbox: ChildProcess;
let exitCode: number | null | undefined;
const output: string[] = [];
let base = '';
let browser: Browser;
let page: Page;

async function sql<T extends pg.QueryResultRow>(database: string, text: string, values: unknown[] = []): Promise<T[]> {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** md5 over every row of the sample database: equal means the same data, not just as many rows. */
async function fingerprint(): Promise<string> {
  const [row] = await sql<{ users: string; orders: string }>(
    appDb,
    `SELECT (SELECT md5(string_agg(u::text, ';' ORDER BY id)) FROM users u) AS users,
            (SELECT md5(string_agg(o::text, ';' ORDER BY id)) FROM orders o) AS orders`,
  );
  return `${row!.users}/${row!.orders}`;
}

async function counts(): Promise<{ users: number; orders: number }> {
  const [row] = await sql<{ users: string; orders: string }>(
    appDb,
    'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM orders) AS orders',
  );
  return { users: Number(row!.users), orders: Number(row!.orders) };
}

async function sandboxDatabases(): Promise<string[]> {
  const rows = await sql<{ datname: string }>(
    'postgres',
    `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2 ORDER BY 1`,
    [`${stateDb}%`, `${appDb}%`],
  );
  return rows.map((r) => r.datname);
}

async function actAs(user: string): Promise<void> {
  await page.getByTestId('acting-as').selectOption(user);
}

async function typeLine(text: string): Promise<void> {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  sandbox = spawn(process.execPath, [SANDBOX_MAIN, '--drop-on-exit'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      SANDBOX_DATABASE_URL: ADMIN_URL,
      SANDBOX_STATE_DB: stateDb,
      SANDBOX_APP_DB: appDb,
      SANDBOX_BACKUPS_DIR: backups,
      SANDBOX_QUEUE_PREFIX: prefix,
      REDIS_URL: TEST_REDIS_URL,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [sandbox.stdout!, sandbox.stderr!])
    stream.on('data', (chunk: Buffer) =>
      output.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      ),
    );
  sandbox.on('exit', (code) => (exitCode = code));
  await waitUntil(
    'the sandbox and its Lifeline to start',
    async () => {
      if (exitCode !== undefined) throw new Error(`the sandbox exited with ${exitCode}:\n${output.join('\n')}`);
      const state = (await fetch(`${base}/api/state`).then(
        (r) => r.json(),
        () => undefined,
      )) as { lifeline?: { state: string } } | undefined;
      return state?.lifeline?.state === 'running';
    },
    120_000,
    250,
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1720, height: 1000 } });
  page.setDefaultTimeout(30_000);
  await page.goto(base);
  await page.getByTestId('lifeline-status').and(page.locator('[data-state=running]')).waitFor();
}, 180_000);

afterEach(async (context) => {
  // A failed step is easier to understand with the page as it was.
  if (context.task.result?.state === 'fail' && page) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'sandbox-failed.png') }).catch(() => undefined);
  }
});

afterAll(async () => {
  await browser?.close();
  if (sandbox && exitCode === undefined) {
    sandbox.kill('SIGKILL');
    await waitUntil('the sandbox to exit', () => exitCode !== undefined, 10_000);
  }
  // Whatever the tests left (a failure before the last test): gone either way.
  const left = await sandboxDatabases().catch(() => []);
  for (const name of left) await sql('postgres', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await dropQueuePrefix(prefix);
  rmSync(backups, { recursive: true, force: true });
}, 60_000);

describe('the sandbox in a browser', () => {
  test('starts Lifeline behind its real Bolt receiver: an unsigned or wrongly signed request is refused', async () => {
    const state = (await (await fetch(`${base}/api/state`)).json()) as { lifeline: { requestUrl: string } };
    const body = new URLSearchParams({
      command: '/incident',
      text: 'sev1 forged',
      user_id: PEOPLE.dev,
      channel_id: 'C0EMERGENCY',
    }).toString();
    const unsigned = await fetch(state.lifeline.requestUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    const forged = await fetch(state.lifeline.requestUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-slack-signature': `v0=${'0'.repeat(64)}`,
      },
      body,
    });
    expect(unsigned.status).toBe(401);
    expect(forged.status).toBe(401);
    // The page shows the simulated AWS as what it is.
    await page.getByTestId('simulated-aws').filter({ hasText: 'Simulated AWS' }).waitFor();
    await page.getByTestId('ecs-service').filter({ hasText: 'shop-api' }).waitFor();
  });

  test('declares an incident, acknowledges it as the on-call engineer, and PagerDuty sees the trigger and the acknowledge', async () => {
    await actAs(PEOPLE.dev);
    await typeLine('/incident sev1 Database unreachable');
    const card = page.getByTestId('messages').getByTestId('message').filter({ hasText: 'Database unreachable' });
    await card.getByRole('button', { name: 'Acknowledge' }).waitFor();
    await card.getByRole('button', { name: 'Resolve' }).waitFor();
    expect(await card.textContent()).toMatch(/SEV1 · INC-1\b/);
    expect(await card.textContent()).toContain('@Dev Patel');
    // The ladder's first step pages on-call at once, and mentions them in the card's thread.
    const oncallAlert = (action: string) =>
      page.locator(`[data-testid=page-event][data-action=${action}][data-dedup-key="lifeline-INC-1-oncall"]`);
    await oncallAlert('trigger').waitFor();
    await card.getByTestId('replies').filter({ hasText: '1 reply' }).waitFor();

    await actAs(PEOPLE.oncall);
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await card.filter({ hasText: /Acknowledged by @Olivia Okafor/ }).waitFor();
    await card.getByRole('button', { name: 'Acknowledge' }).waitFor({ state: 'detached' });
    await card.getByRole('button', { name: 'Resolve' }).waitFor();
    await oncallAlert('acknowledge').waitFor();
    expect(await page.getByTestId('page-event').count()).toBe(2);
  });

  test('the first backup is Lifeline’s own backup job, so a drill of it makes every check: checksum, verify queries, row counts', async () => {
    // JOB-1, in the channel with its plan and, in its thread, its result.
    const messages = page.getByTestId('messages').locator('[data-testid=message]');
    const first = messages.filter({ hasText: 'JOB-1: backup of production' }).first();
    await first.waitFor();
    await first.getByTestId('replies').click();
    await page
      .getByTestId('thread')
      .filter({ hasText: /JOB-1 succeeded: Backed up production/ })
      .waitFor();
    const [row] = await sql<{ checked: boolean; tables: string }>(
      stateDb,
      `SELECT checked_at IS NOT NULL AS checked, (SELECT count(*) FROM jsonb_object_keys(table_rows))::text AS tables
         FROM backups`,
    );
    expect(row).toEqual({ checked: true, tables: '3' });
    const files = readdirSync(backups).filter((name) => !name.startsWith('.'));
    expect(files).toHaveLength(2);
    expect(files.filter((name) => name.endsWith('.sha256'))).toHaveLength(1);

    await actAs(PEOPLE.oncall);
    await typeLine('/dr drill production');
    const reply = page
      .getByTestId('ephemeral')
      .filter({ hasText: /JOB-\d+: restore drill of production requested/ })
      .first();
    await reply.waitFor();
    const job = /JOB-(\d+)/.exec((await reply.textContent()) ?? '')![1];
    const plan = messages.filter({ hasText: `JOB-${job}: restore drill of production` }).first();
    await plan.getByTestId('replies').click();
    const thread = page.getByTestId('thread');
    const name = `${appDb}_\\d{8}_\\d{6}\\.dump`;
    const passed = new RegExp(`JOB-${job} succeeded: Restore drill of production passed with ${name}\\.`);
    await thread.filter({ hasText: passed }).waitFor({ timeout: 120_000 });
    const text = (await thread.textContent()) ?? '';
    expect(text).not.toMatch(/skipped/);
    expect(text).toMatch(/✓ checksum: sha256 [0-9a-f]{12} matches the catalogue/);
    expect(text).toMatch(/✓ row counts: all 3 tables match the backup/);
  });

  test('a restore requested by the engineering lead and approved by the CTO restores the sample database for real', async () => {
    const original = await fingerprint();
    expect(await counts()).toEqual({ users: 2000, orders: 5000 });
    const [{ oid: before }] = (await sql<{ oid: string }>(
      'postgres',
      'SELECT oid::text FROM pg_database WHERE datname = $1',
      [appDb],
    )) as [{ oid: string }];
    // The outage the restore repairs: most orders gone.
    await sql(appDb, 'DELETE FROM orders WHERE id > 100');

    await actAs(PEOPLE.lead);
    await typeLine('/dr restore production latest');
    const reply = page
      .getByTestId('ephemeral')
      .filter({ hasText: /JOB-\d+/ })
      .first();
    await reply.waitFor();
    const job = /JOB-(\d+)/.exec((await reply.textContent()) ?? '')![1];
    const planned = page
      .getByTestId('messages')
      .getByTestId('message')
      .filter({ hasText: `JOB-${job}` })
      .filter({ has: page.getByRole('button', { name: 'Approve' }) });
    await planned.waitFor();
    // By its ts: the buttons go once it is approved, and the open thread shows the plan a second time.
    const plan = page
      .getByTestId('messages')
      .locator(`[data-testid=message][data-ts="${await planned.getAttribute('data-ts')}"]`);
    expect(await plan.textContent()).toMatch(/Restore the production database/);

    // The requester cannot approve their own restore: Lifeline says so to them alone, and nothing changes.
    await plan.getByRole('button', { name: 'Approve' }).click();
    await page
      .getByTestId('ephemeral')
      .filter({ hasText: new RegExp(`You requested JOB-${job}\\b`) })
      .first()
      .waitFor();
    await plan.getByRole('button', { name: 'Approve' }).waitFor();

    await actAs(PEOPLE.cto);
    await plan.getByRole('button', { name: 'Approve' }).click();
    await plan.filter({ hasText: /by @Chen Tao/ }).waitFor();
    await plan.getByTestId('replies').click();
    const thread = page.getByTestId('thread');
    await thread.filter({ hasText: new RegExp(`JOB-${job} succeeded`) }).waitFor({ timeout: 150_000 });
    expect(await thread.textContent()).toMatch(/SELECT COUNT\(\*\) FROM orders.*5000/s);

    expect(await counts()).toEqual({ users: 2000, orders: 5000 });
    expect(await fingerprint()).toBe(original);
    const [{ oid: after }] = (await sql<{ oid: string }>(
      'postgres',
      'SELECT oid::text FROM pg_database WHERE datname = $1',
      [appDb],
    )) as [{ oid: string }];
    expect(after).not.toBe(before); // a fresh database was swapped in, not the old one patched
    await page.getByTestId('shop-orders').filter({ hasText: '5,000' }).waitFor();
    await page.getByTestId('backup').filter({ hasText: 'safety copy' }).waitFor();
    expect(
      readdirSync(backups).some((name) => new RegExp(`^${appDb}_pre-restore_\\d{8}_\\d{6}\\.dump$`).test(name)),
    ).toBe(true);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'sandbox.png') });
    expect(existsSync(join(ARTIFACTS, 'sandbox.png'))).toBe(true);
  });

  test('stops on SIGTERM, stopping Lifeline, and --drop-on-exit drops its databases, backups and queues', async () => {
    sandbox.kill('SIGTERM');
    await waitUntil('the sandbox to exit', () => exitCode !== undefined, 40_000);
    expect(exitCode).toBe(0);
    expect(output.join('\n')).toContain('Lifeline stopped');
    expect(await sandboxDatabases()).toEqual([]);
    expect(existsSync(backups)).toBe(false);
  });
});
