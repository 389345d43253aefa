// A hostile plain-SQL backup end to end: signed Slack requests into the real
// process (node dist/main.js), the real PostgreSQL and psql behind it, a file:// store. The newest backup is a real
// pg_dump plain dump into which its `\restrict` key's own `\unrestrict` and a `\! touch <marker>` were written, the
// attack pg_dump's \restrict alone does not stop. `/dr restore prod latest`, approved, fails in preflight naming the
// line and the command; `/dr drill prod` (no approval) fails in preflight too. Neither touches prod, leaves a
// scratch database or a file behind, and the shell command never runs. A control shows that the same backup fed
// to psql as `gunzip | psql` does run it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ADMIN_URL } from '../support/db.js';
import { allText, type Sent, type World } from '../support/e2e.js';
import { USERS } from '../support/lifeline-process.js';
import {
  approvablePlan,
  auditOf,
  AwsTripwire,
  backupName,
  clickButton,
  closeAll,
  createAppDatabase,
  dumpSqlGz,
  fileStoreWorld,
  finished,
  replyJob,
  resultText,
  stepRows,
  storeFiles,
  withClient,
  writeGzip,
  type AppDatabase,
} from '../support/recovery.js';

vi.setConfig({ testTimeout: 60_000 });

const ENV = 'prod';
const PREFIX = 'shop';
const ROWS = 300;

let w: World;
let app: AppDatabase;
let aws: AwsTripwire;
let store: string;
let scratch: string; // the process's TMPDIR
let markers: string; // where the hostile backup's shell command would leave its file
let original: string;
let goodFile: string;
let hostileFile: string;
let hostileLine: number;

/** The dump with the attack written after its own `\restrict <key>` line; the line number of the `\!`. */
function hostile(dump: string, marker: string): { sql: string; line: number } {
  const key = /^\\restrict ([A-Za-z0-9]+)$/m.exec(dump)?.[1];
  if (!key) throw new Error('the local pg_dump did not write \\restrict: it is older than August 2025');
  const sql = dump.replace(
    `\\restrict ${key}\n`,
    `\\restrict ${key}\n\\unrestrict ${key}\n\\! touch ${marker}\n\\restrict ${key}\n`,
  );
  return { sql, line: sql.split('\n').indexOf(`\\! touch ${marker}`) + 1 };
}

beforeAll(async () => {
  app = await createAppDatabase(ROWS);
  original = await app.fingerprint();
  store = mkdtempSync(join(tmpdir(), 'lifeline-e2e-hostile-store-'));
  scratch = mkdtempSync(join(tmpdir(), 'lifeline-e2e-hostile-tmp-'));
  markers = mkdtempSync(join(tmpdir(), 'lifeline-e2e-hostile-markers-'));
  const now = Date.now();
  goodFile = backupName(PREFIX, new Date(now - 2 * 60 * 60_000), 'sql.gz');
  hostileFile = backupName(PREFIX, new Date(now - 60 * 60_000), 'sql.gz');
  await dumpSqlGz(app.url, join(store, goodFile));
  const attack = hostile(gunzipSync(readFileSync(join(store, goodFile))).toString(), join(markers, 'pwned'));
  hostileLine = attack.line;
  await writeGzip(join(store, hostileFile), attack.sql);
  aws = await new AwsTripwire().start();
  w = await fileStoreWorld({
    env: ENV,
    app,
    store,
    prefix: PREFIX,
    drillsOff: true,
    aws,
    extraEnv: { TMPDIR: scratch },
  });
  await w.process().start();
});

afterAll(async () => {
  await closeAll({ w, aws, app, folders: [store, scratch, markers] });
});

// ---- helpers -------------------------------------------------------------------------------------------------------

function dr(text: string, user: string = USERS.oncall): Promise<Sent> {
  return w.command(text, { user }, '/dr');
}

async function startJob(text: string, user: string = USERS.oncall): Promise<number> {
  const sent = await dr(text, user);
  expect(sent.status).toBe(200);
  return (await replyJob(w, sent)).job;
}

/** Runs `work` while recording every database named <app>_... that exists at any moment (polled every 20 ms). */
async function watchingLeftovers<T>(work: () => Promise<T>): Promise<{ result: T; seen: string[] }> {
  const seen = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const n of await app.leftovers()) seen.add(n);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    return { result: await work(), seen: [...seen] };
  } finally {
    watching = false;
    await watcher;
  }
}

/** What the refusal names: the backup, the line, the command; never the shell command's arguments. */
function expectRefusalNamed(text: string): void {
  expect(text).toContain(
    `backup ${hostileFile} is refused: line ${hostileLine}: the psql meta-command \\! outside COPY data`,
  );
  expect(text).not.toContain('pwned');
}

// ---- the tests -----------------------------------------------------------------------------------------------------

describe('a hostile plain-SQL backup', () => {
  test('control: fed to psql as `gunzip | psql`, the same backup runs its shell command', async () => {
    const controlMarker = join(markers, 'control');
    const attack = hostile(gunzipSync(readFileSync(join(store, goodFile))).toString(), controlMarker);
    const database = `llhostile_control_${randomBytes(3).toString('hex')}`;
    await withClient(ADMIN_URL, (c) => c.query(`CREATE DATABASE ${database}`));
    try {
      const url = new URL(ADMIN_URL);
      url.pathname = `/${database}`;
      const psql = spawn('psql', ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', `--dbname=${url.toString()}`], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      const exited = new Promise<number | null>((resolve) => psql.on('close', resolve));
      psql.stdin.end(attack.sql);
      expect(await exited).toBe(0);
      expect(existsSync(controlMarker), "psql ran the backup's \\! command").toBe(true);
    } finally {
      await withClient(ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
    }
  });

  test('`/dr restore prod latest`, approved: refused in preflight naming line and command; nothing ran', async () => {
    const filesBefore = await storeFiles(store);
    const job = await startJob(`restore ${ENV} latest`);
    const plan = await approvablePlan(w, job);
    expect(allText(plan.body)).toContain(hostileFile);
    const { result: end, seen } = await watchingLeftovers(async () => {
      const click = await clickButton(w, plan, 'Approve', USERS.cto);
      expect(click.status).toBe(200);
      return finished(w, job);
    });
    expect(end.state).toBe('failed');
    expect(end.outcome).toMatch(/preflight/);
    const result = await resultText(w, job);
    expect(result).toMatch(/preflight/);
    expectRefusalNamed(result);
    expect((await stepRows(w, job)).map((s) => [s.name, s.state])).toEqual([
      ['preflight: target reachable, backup readable and intact', 'failed'],
    ]);
    expect(seen, 'no fresh database was ever created').toEqual([]);
    expect(existsSync(join(markers, 'pwned'))).toBe(false);
    expect(await app.fingerprint()).toBe(original);
    expect(await app.leftovers()).toEqual([]);
    expect(await storeFiles(store)).toEqual(filesBefore); // no safety copy, nothing else written
    expect(readdirSync(scratch)).toEqual([]);
    const audit = await auditOf(w, job);
    expect(audit.some((e) => e.action === 'step_failed' && e.detail.includes(`line ${hostileLine}`))).toBe(true);
    expect(audit.at(-1)?.action).toBe('failed');
  });

  test('`/dr drill prod` fails in preflight: no scratch database, a failed drill recorded, nothing ran', async () => {
    const { result: job, seen } = await watchingLeftovers(async () => {
      const started = await startJob(`drill ${ENV}`);
      const end = await finished(w, started);
      expect(end.state).toBe('failed');
      return started;
    });
    const result = await resultText(w, job);
    expect(result).toContain(hostileFile);
    expectRefusalNamed(result);
    expect(result).toMatch(/prod's own database was not touched/);
    expect((await stepRows(w, job)).map((s) => [s.name, s.state])).toEqual([
      ['preflight: latest backup readable', 'failed'],
    ]);
    expect(seen, 'the drill never created its scratch database').toEqual([]);
    const { rows } = await w.sql.query<{ backup_name: string; passed: boolean }>(
      'SELECT backup_name, passed FROM drills WHERE job = $1',
      [job],
    );
    expect(rows).toEqual([{ backup_name: hostileFile, passed: false }]);
    expect(existsSync(join(markers, 'pwned'))).toBe(false);
    expect(await app.fingerprint()).toBe(original);
    expect(await app.leftovers()).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
  });

  test('the good plain-SQL backup beside it still restores by name (its own \\restrict pair replaced)', async () => {
    await app.query('DELETE FROM users WHERE id > 10');
    const job = await startJob(`restore ${ENV} file ${goodFile}`);
    await clickButton(w, await approvablePlan(w, job), 'Approve', USERS.lead);
    const end = await finished(w, job);
    expect(end.state, end.outcome ?? '').toBe('succeeded');
    const preflight = (await stepRows(w, job))[0];
    expect(preflight?.detail).toMatch(/no psql meta-command; pg_dump's own \\restrict pair replaced by Lifeline's key/);
    expect(await app.fingerprint()).toBe(original);
    expect(await app.leftovers()).toEqual([]);
    expect(existsSync(join(markers, 'pwned'))).toBe(false);
    expect(aws.calls).toEqual([]);
  });
});
