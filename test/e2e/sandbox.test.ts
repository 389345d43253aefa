// The sandbox as a newcomer meets it: `node dist/sandbox/main.js` (what `npm run sandbox` runs) on free ports with
// its own databases and queue prefix, driven through its page in real headless Chromium (Debian's chromium package
// through playwright-core; nothing downloads a browser). Declare an incident, see the card, acknowledge it as the
// on-call engineer and see PagerDuty's trigger and acknowledge; request a restore as the engineering lead, approve it
// as the CTO, see the job succeed in the plan's thread and the sample database back as it was. Fire the sample
// Alertmanager alert and see its incident, its channel and the status page follow it; dry-run then run the region
// failover runbook by its buttons (Done, each step's approval) and see the simulated AWS move to the DR region, the API
// answer and the report; check the layout at 1440 px; stop with SIGTERM and remove what is left with --clean. The page's screenshot is kept as test-artifacts/sandbox.png.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
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
// Where the sandbox writes Lifeline's config (src/sandbox/settings.ts): gone on stop.
const configDir = join(tmpdir(), 'lifeline-sandbox', `config-${stateDb}`);
const ALERT_SUMMARY = 'Checkout error rate above 5%';
const API_RECORD = 'api.sandbox-shop.example';

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

async function openChannel(name: string | RegExp): Promise<void> {
  await page.locator('[data-testid=channel-item]').filter({ hasText: name }).click();
  await page.getByTestId('channel-title').filter({ hasText: name }).waitFor();
}

async function redisKeys(): Promise<number> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    return (await redis.keys(`${prefix}:*`)).length;
  } finally {
    redis.disconnect();
  }
}

/** The sandbox's own command line with the test's settings: --clean, --help. */
function runSandbox(...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SANDBOX_MAIN, ...args], { env: sandboxEnv(0), stdio: 'pipe' });
    let text = '';
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('exit', (code) => resolve({ code, output: text }));
  });
}

function sandboxEnv(port: number): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PORT: String(port || 3000),
    SANDBOX_DATABASE_URL: ADMIN_URL,
    SANDBOX_STATE_DB: stateDb,
    SANDBOX_APP_DB: appDb,
    SANDBOX_BACKUPS_DIR: backups,
    SANDBOX_QUEUE_PREFIX: prefix,
    REDIS_URL: TEST_REDIS_URL,
  };
}

/**
 * Where the text of `element` wraps onto a new line: the characters either side of each break, measured from the
 * rendered glyphs (a <br> counts as a newline character).
 */
async function lineBreaks(element: Locator): Promise<{ before: string; after: string }[]> {
  return element.evaluate((root) => {
    const doc = root.ownerDocument;
    const walker = doc.createTreeWalker(root, 1 | 4 /* NodeFilter.SHOW_ELEMENT | SHOW_TEXT */);
    const glyphs: { char: string; top: number }[] = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.nodeName === 'BR') glyphs.push({ char: '\n', top: glyphs.at(-1)?.top ?? 0 });
      if (node.nodeType !== 3 /* Node.TEXT_NODE */) continue;
      const text = node.textContent ?? '';
      for (let i = 0; i < text.length; i++) {
        const range = doc.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getBoundingClientRect();
        glyphs.push({ char: text[i]!, top: rect.top });
      }
    }
    return glyphs.flatMap((g, i) =>
      i > 0 && g.top > glyphs[i - 1]!.top + 2 ? [{ before: glyphs[i - 1]!.char, after: g.char }] : [],
    );
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  sandbox = spawn(process.execPath, [SANDBOX_MAIN], { env: sandboxEnv(port), stdio: ['ignore', 'pipe', 'pipe'] });
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
  rmSync(configDir, { recursive: true, force: true });
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
    await page.locator('[data-testid=ecs-service][data-region=us-east-1]').filter({ hasText: 'shop-web' }).waitFor();
    await page.getByTestId('simulated-vercel').filter({ hasText: 'Simulated Vercel' }).waitFor();
    await page.locator('[data-testid=vercel-deployment][data-production=true][data-state=READY]').waitFor();
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
    await card.getByTestId('replies').click();
    await page.getByTestId('thread').filter({ hasText: '@Olivia Okafor' }).waitFor();
    await page.getByRole('button', { name: 'Close the thread' }).click();

    await actAs(PEOPLE.oncall);
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await card.filter({ hasText: /Acknowledged by @Olivia Okafor/ }).waitFor();
    await card.getByRole('button', { name: 'Acknowledge' }).waitFor({ state: 'detached' });
    await card.getByRole('button', { name: 'Resolve' }).waitFor();
    await oncallAlert('acknowledge').waitFor();
    expect(await page.getByTestId('page-event').count()).toBe(2);
  });

  test('the sample alert declares a SEV1 with its own channel and status page incident; its resolve clears all three', async () => {
    await page.getByTestId('alert-fire').click();
    await page.getByTestId('alert-outcome').filter({ hasText: 'declared' }).waitFor();
    const outcome = (await page.getByTestId('alert-last').textContent()) ?? '';
    const id = /INC-\d+/.exec(outcome)![0];
    // The card, in #devops-emergency, says the alert declared it and where it came from.
    const card = page
      .getByTestId('messages')
      .getByTestId('message')
      .filter({ hasText: `SEV1 · ${id}` });
    await card.filter({ hasText: ALERT_SUMMARY }).getByRole('button', { name: 'Acknowledge' }).waitFor();
    expect(await card.textContent()).toContain('Source: Alertmanager group CheckoutErrorRate');
    await card.getByRole('link', { name: 'the alert in Prometheus' }).waitFor();

    // Its channel: created, named after it, with the card pinned and the topic set.
    const name = `inc-${id.slice(4)}-checkout-error-rate-above-5`;
    await card.getByRole('button', { name: `#${name}` }).click();
    await page
      .getByTestId('channel-title')
      .filter({ hasText: `# ${name}` })
      .waitFor();
    await page
      .getByTestId('channel-note')
      .filter({ hasText: `SEV1 | investigating | ${ALERT_SUMMARY}` })
      .waitFor();
    const pinned = page
      .getByTestId('messages')
      .getByTestId('message')
      .filter({ has: page.getByTestId('pinned') });
    expect(await pinned.textContent()).toContain(`SEV1 · ${id}`);

    // The simulated status page: an incident for the SEV1, the component down.
    const statusIncident = page.getByTestId('sp-incident').filter({ hasText: ALERT_SUMMARY });
    await statusIncident.and(page.locator('[data-status=investigating]')).waitFor();
    await page.locator('[data-testid=sp-component][data-status=major_outage]').waitFor();

    await page.getByTestId('alert-resolve').click();
    await page.getByTestId('alert-outcome').filter({ hasText: 'resolved' }).waitFor();
    await statusIncident.and(page.locator('[data-status=resolved]')).waitFor();
    await page.locator('[data-testid=sp-component][data-status=operational]').waitFor();
    await page
      .getByTestId('channel-note')
      .filter({ hasText: `SEV1 | resolved | ${ALERT_SUMMARY}` })
      .waitFor();
    expect(await page.getByTestId('alert-resolve').isDisabled()).toBe(true);
    await openChannel('devops-emergency');
  });

  test('#general suggests no command it would refuse: it points to #devops-emergency, and examples go there', async () => {
    await openChannel('general');
    const welcome = page.getByTestId('welcome');
    await welcome.waitFor();
    expect(await welcome.textContent()).not.toContain('/incident sev1');
    await welcome.getByRole('button', { name: '#devops-emergency' }).click();
    await page.getByTestId('channel-title').filter({ hasText: '# devops-emergency' }).waitFor();
    await openChannel('general');
    await page.getByRole('button', { name: '/incident list' }).click();
    await page.getByTestId('channel-title').filter({ hasText: '# devops-emergency' }).waitFor();
    expect(await page.getByTestId('composer').inputValue()).toBe('/incident list');
    await page.getByTestId('composer').fill('');
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

  test('a region failover by its buttons: a dry run, Done, an approval per step, the API back in the DR region, the report', async () => {
    await openChannel('devops-emergency');
    const dnsRecord = (value: string) =>
      page.locator(`[data-testid=dns-record][data-name="${API_RECORD}"][data-value="${value}"]`);
    await dnsRecord('api-primary.sandbox-shop.example').waitFor();
    await page.locator('[data-testid=api-health][data-healthy=false]').waitFor();
    const runMessage = async (title: RegExp) => {
      const posted = page.getByTestId('messages').getByTestId('message').filter({ hasText: title });
      await posted.waitFor();
      return page
        .getByTestId('messages')
        .locator(`[data-testid=message][data-ts="${await posted.getAttribute('data-ts')}"]`);
    };

    // The dry run: every step's plan against the simulated AWS, and no gap.
    await actAs(PEOPLE.lead);
    await page
      .getByTestId('runbook')
      .filter({ hasText: 'region-failover' })
      .getByRole('button', { name: 'dry run' })
      .click();
    expect(await page.getByTestId('composer').inputValue()).toBe('/dr run region-failover --dry-run');
    await page.getByTestId('composer').press('Enter');
    const dry = await runMessage(/RUN-1: dry run of region-failover/);
    await dry.filter({ hasText: /RUN-1: dry run of region-failover.*succeeded/ }).waitFor();
    expect(await dry.textContent()).toContain('nothing missing');
    expect(await dry.textContent()).not.toMatch(/missing: /);
    await dnsRecord('api-primary.sandbox-shop.example').waitFor();

    await typeLine('/dr run region-failover');
    const run = await runMessage(/RUN-2: region-failover/);
    // The terraform step is done by hand: Done, by the requester.
    await run.getByRole('button', { name: 'Done' }).click();
    await run.getByRole('button', { name: 'Approve' }).click();
    await page
      .getByTestId('ephemeral')
      .filter({ hasText: /another approver has to approve it/ })
      .first()
      .waitFor();
    await actAs(PEOPLE.cto);
    for (const step of ['dr_db', 'step-3', 'step-4', 'step-5', 'step-6']) {
      await run.getByRole('button', { name: 'Approve' }).click();
      await run.filter({ hasText: `@Chen Tao (${step})` }).waitFor({ timeout: 60_000 });
    }
    await run.filter({ hasText: /RUN-2: region-failover.*succeeded/ }).waitFor({ timeout: 60_000 });

    // What it changed, on the page: the DR database and service, the record, the API's health, the status page.
    await dnsRecord('api-dr.sandbox-shop.example').waitFor();
    await page.locator('[data-testid=api-health][data-healthy=true]').waitFor();
    await page.locator('[data-testid=rds-instance][data-region=us-west-2][data-status=available]').waitFor();
    await page.locator('[data-testid=ecs-service][data-region=us-west-2][data-running="3"]').waitFor();
    await page.getByTestId('sp-incident').filter({ hasText: 'Service restored from the DR region' }).waitFor();

    await typeLine('/dr run report RUN-2');
    const report = page.getByTestId('ephemeral').filter({ hasText: '# RUN-2: region-failover' });
    await report.waitFor();
    expect(await report.textContent()).toMatch(/RTO achieved: \d/);
    expect(await report.textContent()).toMatch(/RPO achieved: the restored data was \d/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'sandbox-failover.png') });
  });

  test('at 1440 px: channel titles keep to one line, file names break only after a separator', async () => {
    await page.setViewportSize({ width: 1440, height: 900 });
    const titleOnOneLine = async (name: string) => {
      const size = await page.getByTestId('channel-title').evaluate((h1) => ({
        height: h1.getBoundingClientRect().height,
        line: parseFloat(h1.ownerDocument.defaultView!.getComputedStyle(h1).lineHeight),
      }));
      expect(size.height, name).toBeCloseTo(size.line, 0);
    };
    await openChannel('checkout-error-rate');
    await titleOnOneLine('the incident channel');
    // In the sidebar its long name takes one line, as short ones do (measured on the name itself: by the time this
    // runs on a loaded machine the channel may be archived, and its item then carries an "archived" tag too).
    const nameHeight = (name: string) =>
      page
        .locator('[data-testid=channel-item]')
        .filter({ hasText: name })
        .locator('.channel-name')
        .evaluate((span) => span.getBoundingClientRect().height);
    expect(await nameHeight('checkout-error-rate')).toBeCloseTo(await nameHeight('general'), 0);
    // The narrowest channel pane: a thread open beside it.
    await openChannel('devops-emergency');
    await page.getByTestId('messages').getByTestId('replies').first().click();
    await page.getByTestId('thread').waitFor();
    await titleOnOneLine('#devops-emergency beside a thread');

    // Backup names in the panel, and the thread's messages (JOB-1's, naming its backup file), at their widths.
    const names = page.locator('[data-testid=backup] code');
    expect(await names.count()).toBeGreaterThan(1);
    const texts = page.getByTestId('thread-messages').locator('.b-text');
    for (const [what, elements] of [
      ['backup names', names],
      ['thread messages', texts],
    ] as const) {
      const breaks = (await Promise.all((await elements.all()).map(lineBreaks))).flat();
      // Longer than the width they have: they do wrap, and never between two letters or digits.
      expect(breaks.length, what).toBeGreaterThan(0);
      const midWord = breaks.filter((b) => /[a-z0-9]/i.test(b.before) && /[a-z0-9]/i.test(b.after));
      expect(midWord, what).toEqual([]);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'sandbox-1440.png') });
  });

  test('--clean refuses while the sandbox runs; SIGTERM stops it, keeping its data; then --clean removes it all', async () => {
    const refused = await runSandbox('--clean');
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/still runs with these settings/);
    expect(await sandboxDatabases()).toContain(stateDb);

    sandbox.kill('SIGTERM');
    await waitUntil('the sandbox to exit', () => exitCode !== undefined, 40_000);
    expect(exitCode).toBe(0);
    expect(output.join('\n')).toContain('Lifeline stopped');
    // What there is to look at stays; the queues and the config folder go.
    expect(await sandboxDatabases()).toEqual(expect.arrayContaining([stateDb, appDb]));
    expect(readdirSync(backups).some((name) => name.endsWith('.dump'))).toBe(true);
    expect(await redisKeys()).toBe(0);
    expect(existsSync(configDir)).toBe(false);

    // Leftovers as a crash leaves them: queue keys, the config folder, and a restore's database beside the shop's.
    const redis = new Redis(TEST_REDIS_URL);
    await redis.set(`${prefix}:bull:escalation:leftover`, '1').finally(() => redis.disconnect());
    mkdirSync(configDir, { recursive: true });
    const restoreLeftover = `${appDb}_restore_20261204_000000`;
    await sql('postgres', `CREATE DATABASE "${restoreLeftover}" TEMPLATE "${appDb}"`);

    const cleaned = await runSandbox('--clean');
    expect(cleaned.code, cleaned.output).toBe(0);
    expect(await sandboxDatabases()).toEqual([]);
    expect(existsSync(backups)).toBe(false);
    expect(await redisKeys()).toBe(0);
    expect(existsSync(configDir)).toBe(false);
  });
});
