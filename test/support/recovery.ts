// Helpers for the /dr end-to-end tests: application databases with data, backups of them in a file:// store,
// the approval buttons as Slack sends their clicks, and a tripwire that records any AWS call.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import pg from 'pg';
import { ADMIN_URL } from './db.js';
import { allText, buttonsOf, EMERGENCY, linesWithSecrets, World, type ButtonInfo, type Sent } from './e2e.js';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { buttonBody, newTriggerId } from './slack-requests.js';
import { waitUntil } from './wait.js';
import { apiText } from '../../src/delivery/api/job-view.js';
import type { Said } from '../../src/shared/text.js';

const run = promisify(execFile);

// ---- application databases ---------------------------------------------------------------------------------------

export interface AppDatabase {
  readonly name: string;
  /** Without a password: for the test's own pg_dump and queries. */
  readonly url: string;
  /** What Lifeline's config gets: with a password when the server does not need one, to check it never leaks. */
  readonly configUrl: string;
  /** The password in configUrl ('' when none was added). */
  readonly password: string;
  count(): Promise<number>;
  /** md5 over every row, to tell "untouched" from "same count". */
  fingerprint(): Promise<string>;
  query(sql: string): Promise<void>;
  /** Databases named <name>_... (what a restore creates beside the target and must clean up). */
  leftovers(): Promise<string[]>;
  /** Drops the database and every <name>_* leftover. */
  drop(): Promise<void>;
}

/** One short-lived connection to `url`. */
export async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

function admin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
  return withClient(ADMIN_URL, work);
}

function likePrefix(name: string): string {
  return `${name.replace(/[\\_%]/g, (ch) => `\\${ch}`)}\\_%`;
}

/** A database with `users (id, email, created_at)` holding `rows` rows. */
export async function createAppDatabase(rows: number): Promise<AppDatabase> {
  const name = `llapp_${process.pid}_${randomBytes(3).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const base = new URL(ADMIN_URL);
  base.pathname = `/${name}`;
  const url = base.toString();
  const password = base.password === '' ? `app-pw-${randomBytes(6).toString('hex')}` : '';
  const withPassword = new URL(url);
  if (password) withPassword.password = password;
  const withDb = <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => withClient(url, work);
  await withDb(async (c) => {
    await c.query(
      `CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL)`,
    );
    await c.query(
      `INSERT INTO users SELECT g, 'user' || g || '@example.com', timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, $1) g`,
      [rows],
    );
  });
  const leftovers = () =>
    admin(async (c) =>
      (
        await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname`, [
          likePrefix(name),
        ])
      ).rows.map((r) => r.datname),
    );
  return {
    name,
    url,
    configUrl: withPassword.toString(),
    password,
    count: () =>
      withDb(async (c) => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM users')).rows[0]!.n)),
    fingerprint: () =>
      withDb(
        async (c) =>
          (
            await c.query<{ h: string }>(
              `SELECT md5(coalesce(string_agg(id || ',' || email || ',' || created_at, ';' ORDER BY id), '')) AS h FROM users`,
            )
          ).rows[0]!.h,
      ),
    query: (sql) => withDb(async (c) => void (await c.query(sql))),
    leftovers,
    async drop() {
      const names = [name, ...(await leftovers().catch(() => []))];
      await admin(async (c) => {
        for (const n of names) await c.query(`DROP DATABASE IF EXISTS "${n.replace(/"/g, '""')}" WITH (FORCE)`);
      });
    },
  };
}

// ---- the world a /dr test runs in ---------------------------------------------------------------------------------

/** One environment of the config: `app` as its database, its backups in the file:// folder `store`. */
export interface FileStoreEnvironment {
  readonly env: string;
  readonly app: AppDatabase;
  readonly store: string;
  readonly prefix: string;
  /** 360 unless told. */
  readonly rpoMinutes?: number;
  /** The verify query (YAML as it stands); `SELECT COUNT(*) FROM users` unless told. */
  readonly verify?: string;
  /** drill_schedule: "off" (no scheduled drill starts a job of its own). */
  readonly drillsOff?: boolean;
}

/** The `environments:` YAML of that one environment; restores need approval. */
export function fileStoreYaml(e: FileStoreEnvironment): string {
  const drills = e.drillsOff ? ', drill_schedule: "off"' : '';
  return `  ${e.env}:
    database:
      url: "${e.app.configUrl}"
      verify: [${e.verify ?? 'SELECT COUNT(*) FROM users'}]
    backups: { store: "file://${e.store}", prefix: ${e.prefix}, retention_days: 7, rpo_minutes: ${e.rpoMinutes ?? 360}${drills} }
    require_approval: [restore]`;
}

/**
 * A World (no process started yet) whose config has that one environment, pages on-call at once, and sends every
 * AWS call to the tripwire; `extraEnv` goes to its processes too.
 */
export function fileStoreWorld(
  e: FileStoreEnvironment & { readonly aws: AwsTripwire; readonly extraEnv?: Record<string, string> },
): Promise<World> {
  return World.create({
    config: { steps: [{ after_minutes: 0, notify: 'oncall' }], environmentsYaml: fileStoreYaml(e) },
    extraEnv: { ...e.aws.env(), ...e.extraEnv },
  });
}

/** Closes whatever of a /dr test file's setup was made: the world, the tripwire, the app database, temp folders. */
export async function closeAll(parts: {
  readonly w?: World;
  readonly aws?: AwsTripwire;
  readonly app?: AppDatabase;
  readonly folders?: readonly (string | undefined)[];
}): Promise<void> {
  await parts.w?.close();
  await parts.aws?.stop();
  await parts.app?.drop();
  for (const folder of parts.folders ?? []) if (folder) rmSync(folder, { recursive: true, force: true });
}

/**
 * Where the app database's password (if the test added one) or another secret got out: Slack messages carrying the
 * password, log lines carrying the password or a secret, and any AWS call. All empty when nothing leaked.
 */
export function leaks(
  w: World,
  app: AppDatabase,
  aws: AwsTripwire,
): { slackWithPassword: string[]; logWithPassword: string[]; logWithSecrets: string[]; awsCalls: unknown[] } {
  const carriesPassword = (text: string): boolean => app.password !== '' && text.includes(app.password);
  const slackTexts = [
    ...w.slack.calls.filter((c) => c.method.startsWith('chat.')).map((c) => JSON.stringify(c.body)),
    ...w.slack.responses.map((r) => JSON.stringify(r.body)),
  ];
  return {
    slackWithPassword: slackTexts.filter(carriesPassword),
    logWithPassword: w.output().filter(carriesPassword),
    logWithSecrets: linesWithSecrets(w.output()),
    awsCalls: aws.calls,
  };
}

export const NO_LEAKS = { slackWithPassword: [], logWithPassword: [], logWithSecrets: [], awsCalls: [] } as const;

/** The steps of a restore job, in order, as its step list names them. */
export const RESTORE_STEP_NAMES = [
  /preflight/,
  /restore into a fresh database/,
  /swap/,
  /verify/,
  /ANALYZE/,
  /safety backup/,
  /clean ?up/,
] as const;

// ---- backups -----------------------------------------------------------------------------------------------------

/** `<prefix>_<YYYYMMDD>_<HHMMSS>.<ext>` for a UTC time. */
export function backupName(prefix: string, at: Date, ext: 'dump' | 'sql.gz'): string {
  const iso = at.toISOString();
  return `${prefix}_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}.${ext}`;
}

/** pg_dump -Fc into a file (execFile, an argument array). */
export async function dumpCustom(url: string, path: string): Promise<void> {
  await run('pg_dump', ['-Fc', '--no-owner', `--dbname=${url}`, '-f', path]);
}

/** pg_dump (plain SQL) | gzip into a file, without a shell. */
export async function dumpSqlGz(url: string, path: string): Promise<void> {
  const child = spawn('pg_dump', ['--no-owner', `--dbname=${url}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  await pipeline(child.stdout, createGzip(), createWriteStream(path));
  const code = await exited;
  if (code !== 0) throw new Error(`pg_dump exited ${code}: ${stderr}`);
}

/** Writes gzip-compressed text to a file (a well-formed .sql.gz whose SQL may be anything). */
export async function writeGzip(path: string, text: string): Promise<void> {
  await pipeline(Readable.from([Buffer.from(text)]), createGzip(), createWriteStream(path));
}

export async function storeFiles(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((n) => !n.startsWith('.')).sort();
}

export async function pgRestoreList(path: string): Promise<string> {
  return (await run('pg_restore', ['-l', path])).stdout;
}

// ---- jobs as Slack and PostgreSQL see them -----------------------------------------------------------------------

export { buttonsOf, type ButtonInfo };

/** Clicks a button of a posted message as `user`, with Slack's block_actions payload, signed. */
export async function clickButton(w: World, message: SlackCall, label: string, user: string): Promise<Sent> {
  const button = buttonsOf(message.body).find((b) => b.label === label);
  if (!button) throw new Error(`the message has no "${label}" button: ${JSON.stringify(message.body.blocks)}`);
  const responseUrl = w.slack.newResponseUrl();
  const triggerId = newTriggerId();
  const channel = String(message.body.channel);
  const body = buttonBody({
    actionId: button.actionId,
    value: button.value,
    blockId: button.blockId,
    label,
    user_id: user,
    channel_id: channel,
    message_ts: String(message.result?.ts ?? ''),
    response_url: responseUrl,
    trigger_id: triggerId,
  });
  return w.resend({ body, responseUrl, triggerId, user, channel });
}

/** The plan (approval request) message of JOB-n: the top-level post that starts with its id. */
export function planPost(w: World, job: number, channel = EMERGENCY): SlackCall | undefined {
  const re = new RegExp(`\\bJOB-${job}\\b`);
  return w.topLevelPosts(channel).find((c) => c.result?.ts !== undefined && re.test(allText(c.body)));
}

export interface JobRow {
  readonly number: number;
  readonly state: string;
  readonly requested_by: string;
  readonly decided_by: string | null;
  readonly outcome: string | null;
  readonly plan: string | null;
}

/** The job's row, its outcome as the API shows it (people as <@U…>). */
export async function jobRow(w: World, job: number): Promise<JobRow | undefined> {
  const { rows } = await w.sql.query<Omit<JobRow, 'outcome'> & { outcome: Said | null }>(
    'SELECT number, state, requested_by, decided_by, outcome, plan FROM recovery_jobs WHERE number = $1',
    [job],
  );
  return rows[0] && { ...rows[0], outcome: rows[0].outcome && apiText(rows[0].outcome) };
}

export async function jobCount(w: World): Promise<number> {
  const { rows } = await w.sql.query<{ n: string }>('SELECT count(*) AS n FROM recovery_jobs');
  return Number(rows[0]!.n);
}

export async function auditCount(w: World): Promise<number> {
  const { rows } = await w.sql.query<{ n: string }>('SELECT count(*) AS n FROM audit_log');
  return Number(rows[0]!.n);
}

export async function auditOf(w: World, job: number): Promise<{ actor: string; action: string; detail: string }[]> {
  const { rows } = await w.sql.query<{ actor: string; action: string; detail: string }>(
    'SELECT actor, action, detail FROM audit_log WHERE job = $1 ORDER BY id',
    [job],
  );
  return rows;
}

/** The job a `/dr` request's private reply names; a reply that names none fails the test with the reply. */
export async function replyJob(w: World, sent: Sent): Promise<{ job: number; reply: string }> {
  const reply = await w.reply(sent);
  const job = jobNumberIn(reply);
  if (job === undefined) throw new Error(`the reply names no job: ${reply}`);
  return { job, reply };
}

/** JOB-n's plan once it carries its buttons (they come with the approval request, after the plan is made). */
export function approvablePlan(w: World, job: number): Promise<SlackCall> {
  return waitUntil(
    `the plan of JOB-${job}`,
    () => {
      const post = planPost(w, job);
      return post && buttonsOf(post.body).length > 0 ? post : undefined;
    },
    15_000,
  );
}

/** JOB-n's row once it has ended: succeeded, failed or cancelled. */
export function finished(w: World, job: number, timeoutMs = 45_000): Promise<JobRow> {
  return waitUntil(
    `JOB-${job} to finish`,
    async () => {
      const r = await jobRow(w, job);
      return r && ['succeeded', 'failed', 'cancelled'].includes(r.state) ? r : undefined;
    },
    timeoutMs,
    100,
  );
}

/** The result message of JOB-n: a thread reply starting "JOB-n succeeded|failed". */
export function resultOf(w: World, job: number): SlackCall | undefined {
  const re = new RegExp(`^JOB-${job} (succeeded|failed)\\b`);
  return w.slack.posts().find((c) => c.body.thread_ts !== undefined && re.test(String(c.body.text ?? '')));
}

export async function resultText(w: World, job: number): Promise<string> {
  return allText((await waitUntil(`the result of JOB-${job}`, () => resultOf(w, job))).body);
}

/** The live progress message of JOB-n: the first thread reply naming it that is not the result. */
export function progressOf(w: World, job: number): SlackCall | undefined {
  const re = new RegExp(`\\bJOB-${job}\\b`);
  const result = resultOf(w, job);
  return w.slack
    .posts()
    .find(
      (c) => c.body.thread_ts !== undefined && re.test(allText(c.body)) && c !== result && c.result?.ts !== undefined,
    );
}

/** The edits (chat.update) of a message Lifeline posted. */
export function updatesOf(w: World, message: SlackCall): SlackCall[] {
  return w.slack.updates().filter((u) => u.body.ts === message.result?.ts && u.body.channel === message.body.channel);
}

/** JOB-n's steps in order, each detail as the API shows it (people as <@U…>). */
export async function stepRows(w: World, job: number): Promise<{ name: string; state: string; detail: string }[]> {
  const { rows } = await w.sql.query<{ name: string; state: string; detail: Said }>(
    'SELECT name, state, detail FROM recovery_steps WHERE job = $1 ORDER BY step_index',
    [job],
  );
  return rows.map((r) => ({ ...r, detail: apiText(r.detail) }));
}

/** The job number a request's private reply names (JOB-n). */
export function jobNumberIn(text: string): number | undefined {
  const match = /\bJOB-(\d+)\b/.exec(text);
  return match ? Number(match[1]) : undefined;
}

// ---- AWS tripwire --------------------------------------------------------------------------------------------------

/** An HTTP endpoint for AWS_ENDPOINT_URL that answers every request with an error and records it. */
export class AwsTripwire {
  readonly calls: { method: string; url: string; target: string | undefined; body: string; at: number }[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const target = req.headers['x-amz-target'];
        this.calls.push({
          method: req.method ?? '',
          url: req.url ?? '',
          target: Array.isArray(target) ? target[0] : target,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        });
        res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' });
        res.end(JSON.stringify({ __type: 'AccessDeniedException', message: 'tripwire: no AWS call was expected' }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  /** Environment that sends every AWS SDK client here. */
  env(): Record<string, string> {
    return {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIATRIPWIRE000000',
      AWS_SECRET_ACCESS_KEY: 'tripwire-secret-key-0000000000',
      AWS_ENDPOINT_URL: this.url,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
