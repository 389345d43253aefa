// Plain-SQL (.sql.gz) restores against the real PostgreSQL and the local psql: a backup never runs a psql
// meta-command. pg_dump's own \restrict pair is replaced by Lifeline's key (a real pg_dump plain dump restores, COPY
// data with backslash lines included); any other backslash line outside COPY data is refused in preflight, before
// anything is created; a stream that fools the classifier still meets restricted psql; a psql whose restricted mode
// is missing or can be escaped is refused (a fake psql on the tool path).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createFileStore } from '../../src/adapters/backup-store/file-store.js';
import { safetyCopyFileName } from '../../src/domain/backups/names.js';
import type { BackupStore } from '../../src/adapters/backup-store/port.js';
import {
  cleanup,
  preflight,
  restoreIntoFresh,
  type LogicalRestorePlan,
  type RestoreState,
} from '../../src/domain/recovery/logical-restore/index.js';
import { RestoreFailedError } from '../../src/pgtools/errors.js';
import type { PgToolOptions } from '../../src/pgtools/process.js';
import { withClient } from '../support/recovery.js';

const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const admin = new URL(ADMIN_URL);
const SFX = randomBytes(4).toString('hex');
const ROLE = `lltest_plain_${SFX}`;
const PASSWORD = `pw-${SFX}`;
const TARGET = `lltest_plain_${SFX}`;
const PREFIX = 'plain';

function urlFor(database: string): string {
  return `postgres://${ROLE}:${PASSWORD}@${admin.hostname}:${admin.port || '5432'}/${database}`;
}

const asAdmin = <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => withClient(ADMIN_URL, work);
const asRole = <T>(database: string, work: (c: pg.Client) => Promise<T>): Promise<T> =>
  withClient(urlFor(database), work);

/** Every row of `notes`, in order: equal fingerprints mean equal contents. */
async function fingerprint(database: string): Promise<string> {
  return asRole(database, async (c) => {
    const { rows } = await c.query<{ h: string }>(
      `SELECT md5(string_agg(coalesce(body, '<null>') || '|' || id, ';' ORDER BY id)) AS h FROM notes`,
    );
    return rows[0]?.h ?? '';
  });
}

/** Databases whose name starts with the target's: the target alone when nothing was created or left behind. */
async function runDatabases(): Promise<string[]> {
  return asAdmin(async (c) =>
    (
      await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1', [
        TARGET,
      ])
    ).rows.map((r) => r.datname),
  );
}

let storeDir: string;
let workDir: string;
let scratch: string;
let store: BackupStore;
let original: string;
let dump: string;
let names = 0;

function planFor(backupName: string, tools?: PgToolOptions): LogicalRestorePlan {
  return {
    targetUrl: urlFor(TARGET),
    store,
    backupName,
    format: 'sql.gz',
    safetyCopyName: safetyCopyFileName(PREFIX, new Date()),
    verify: ['SELECT COUNT(*) FROM notes'],
    workDir,
    parallelJobs: 1,
    ...(tools ? { tools } : {}),
  };
}

/** Stores `sql` gzipped under a fresh backup name. */
async function storeBackup(sql: string, level = 6): Promise<string> {
  names += 1;
  const name = `${PREFIX}_20260301_${String(names).padStart(6, '0')}.sql.gz`;
  await store.write(name, Readable.from([gzipSync(sql, { level })]));
  return name;
}

/** A file the shell command in a hostile backup would create; it must never exist. */
function marker(label: string): string {
  return join(scratch, `pwned-${label}`);
}

/** preflight, then restoreIntoFresh: where it failed (or 'nowhere') and the error. Always cleans up after itself. */
async function attempt(
  plan: LogicalRestorePlan,
): Promise<{ failedIn: string; error?: Error; preflightDetail?: string }> {
  let state: RestoreState = {};
  let failedIn = 'preflight';
  let preflightDetail: string | undefined;
  try {
    const checked = await preflight(plan, state);
    state = checked.state;
    preflightDetail = checked.detail;
    failedIn = 'restoreIntoFresh';
    state = (await restoreIntoFresh(plan, state)).state;
    return { failedIn: 'nowhere', preflightDetail };
  } catch (err) {
    return { failedIn, error: err as Error, preflightDetail };
  } finally {
    await cleanup({ ...plan, tools: undefined }, state.runId ? state : {});
  }
}

/** The first process whose command line matches, with its environment (polled from /proc for up to 10 s). */
async function waitForProcess(
  matches: (cmdline: string) => boolean,
): Promise<{ cmdline: string; environ: Record<string, string> }> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
        if (!matches(cmdline)) continue;
        const pairs = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
        return {
          cmdline,
          environ: Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)])),
        };
      } catch {
        // gone meanwhile, or not ours to read
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no such process appeared within 10 s');
}

beforeAll(async () => {
  storeDir = mkdtempSync(join(tmpdir(), 'lltest-plain-store-'));
  workDir = mkdtempSync(join(tmpdir(), 'lltest-plain-work-'));
  scratch = mkdtempSync(join(tmpdir(), 'lltest-plain-scratch-'));
  store = createFileStore(pathToFileURL(storeDir).href);
  await asAdmin(async (c) => {
    await c.query(`CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}'`);
    await c.query(`CREATE DATABASE ${TARGET} OWNER ${ROLE}`);
  });
  await asRole(TARGET, async (c) => {
    // body first and nullable: pg_dump's COPY data then has lines starting with \N; values with backslashes, a
    // value that is `\.`, CR LF inside a value.
    await c.query('CREATE TABLE notes (body text, id int PRIMARY KEY)');
    await c.query(
      `INSERT INTO notes SELECT CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END, g FROM generate_series(1, 300) g`,
    );
    await c.query(
      `INSERT INTO notes VALUES ('\\.', 301), ('\\! touch /tmp/never', 302), (E'line one\\r\\nline two', 303), ` +
        `('C:\\temp\\', 304)`,
    );
    await c.query(`COMMENT ON TABLE notes IS 'backslash \\ in a comment'`);
  });
  original = await fingerprint(TARGET);
  dump = execFileSync(
    'pg_dump',
    ['--no-owner', '--no-privileges', '--dbname', urlFor(TARGET).replace(`:${PASSWORD}`, '')],
    {
      env: { PATH: process.env.PATH ?? '', PGPASSWORD: PASSWORD },
      maxBuffer: 64 << 20,
    },
  ).toString();
});

afterAll(async () => {
  await asAdmin(async (c) => {
    for (const name of await runDatabases()) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${ROLE}`);
  }).catch(() => undefined);
  for (const dir of [storeDir, workDir, scratch]) rmSync(dir, { recursive: true, force: true });
});

describe('plain-SQL restores never run a psql meta-command', () => {
  test('a pg_dump 15 plain dump (own \\restrict pair, COPY lines starting \\N) restores, pair replaced', async () => {
    const ownKey = /^\\restrict ([A-Za-z0-9]+)$/m.exec(dump)?.[1];
    expect(ownKey, 'the local pg_dump writes \\restrict').toBeDefined();
    expect(dump).toContain(`\\unrestrict ${ownKey}`);
    expect(dump).toMatch(/^\\N\t3$/m);
    const name = await storeBackup(dump);
    const plan = planFor(name);
    const checked = await preflight(plan, {});
    expect(checked.detail).toMatch(
      new RegExp(
        'gzip intact, .* of SQL \\([\\d,]+ lines, 1 COPY block\\), no psql meta-command; ' +
          "pg_dump's own \\\\restrict pair replaced by Lifeline's key",
      ),
    );
    const restored = await restoreIntoFresh(plan, checked.state);
    expect(restored.detail).toContain('gunzip | psql');
    expect(await fingerprint(restored.state.freshDb ?? '')).toBe(original);
    await cleanup(plan, restored.state);
    expect(await runDatabases()).toEqual([TARGET]);
  });

  test('the attack (the dump lifts its own \\restrict, then \\!) is refused in preflight; nothing done', async () => {
    const touched = marker('attack');
    const ownKey = /^\\restrict ([A-Za-z0-9]+)$/m.exec(dump)?.[1] ?? '';
    const hostile = dump.replace(
      `\\restrict ${ownKey}\n`,
      `\\restrict ${ownKey}\n\\unrestrict ${ownKey}\n\\! touch ${touched}\n\\restrict ${ownKey}\n`,
    );
    const line = hostile.split('\n').indexOf(`\\! touch ${touched}`) + 1;
    const name = await storeBackup(hostile);
    const { failedIn, error } = await attempt(planFor(name));
    expect(failedIn).toBe('preflight');
    expect(error).toBeInstanceOf(RestoreFailedError);
    expect(error?.message).toContain(
      `backup ${name} is refused: line ${line}: the psql meta-command \\! outside COPY data`,
    );
    expect(error?.message).not.toContain('touch');
    expect(existsSync(touched)).toBe(false);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(readdirSync(workDir)).toEqual([]);
    expect(await fingerprint(TARGET)).toBe(original);
  });

  test.each([
    [
      '\\connect to the live target by name',
      (m: string) => `SELECT 1;\n\\connect ${TARGET}\nDROP TABLE notes;\n\\! touch ${m}\n`,
      2,
      '\\connect',
    ],
    ['an indented shell command', (m: string) => `SELECT 1;\n   \\! touch ${m}\n`, 2, '\\! after blanks'],
    ['a shell command with CRLF', (m: string) => `SELECT 1;\r\n\\! touch ${m}\r\n`, 2, '\\!'],
    ['a client-side \\copy to a file', (m: string) => `\\copy (SELECT 1) to '${m}'\n`, 1, '\\copy'],
    ['\\o to a file', (m: string) => `\\o ${m}\nSELECT 1;\n`, 1, '\\o'],
    [
      'a \\. outside COPY data',
      (m: string) => `COPY notes (body, id) FROM stdin;\nx\t1\n\\.\n\\.\n\\! touch ${m}\n`,
      4,
      '\\.',
    ],
    [
      'a \\restrict after SQL',
      (m: string) => `SELECT 1;\n\\restrict abc\n\\! touch ${m}\n`,
      2,
      '\\restrict that is not',
    ],
    [
      'an \\unrestrict with a backquoted key',
      (m: string) => `\\restrict abc\nSELECT 1;\n\\unrestrict \`touch ${m}\`\n`,
      3,
      '\\unrestrict that is not',
    ],
  ])('refused in preflight: %s', async (label, sql, line, named) => {
    const touched = marker(label.replace(/\W+/g, '-'));
    const name = await storeBackup(sql(touched));
    const { failedIn, error } = await attempt(planFor(name));
    expect(failedIn).toBe('preflight');
    expect(error).toBeInstanceOf(RestoreFailedError);
    expect(error?.message).toContain(`backup ${name} is refused: line ${line}: `);
    expect(error?.message).toContain(named);
    expect(existsSync(touched)).toBe(false);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(readdirSync(workDir)).toEqual([]);
  });

  test.each([
    [
      "a COPY line inside a dollar quote hides the dump's own \\unrestrict and a \\! from the classifier",
      (m: string) =>
        `\\restrict K1\nSELECT $$\nCOPY notes (body, id) FROM stdin;\n$$;\n` +
        `\\unrestrict K1\n\\! touch ${m}\n\\.\n\\unrestrict K1\n`,
      /\\unrestrict: wrong key/,
    ],
    [
      'a COPY line inside a block comment hides a \\!',
      (m: string) => `/*\nCOPY notes (body, id) FROM stdin;\n*/\n\\! touch ${m}\n\\.\n`,
      /backslash commands are restricted/,
    ],
    [
      'a \\! after SQL on the same line',
      (m: string) => `SELECT 1; \\! touch ${m}\n`,
      /backslash commands are restricted/,
    ],
    ['a \\! after a byte-order mark', (m: string) => `\uFEFF\\! touch ${m}\n`, /backslash commands are restricted/],
  ])('the classifier is fooled, restricted psql is not: %s', async (label, sql, psqlSays) => {
    const touched = marker(label.replace(/\W+/g, '-').slice(0, 60));
    const name = await storeBackup(sql(touched));
    const { failedIn, error, preflightDetail } = await attempt(planFor(name));
    expect(preflightDetail, 'preflight let it through').toMatch(/no psql meta-command/);
    expect(failedIn).toBe('restoreIntoFresh');
    expect(error).toBeInstanceOf(RestoreFailedError);
    expect(error?.message).toMatch(psqlSays);
    expect(error?.message).toMatch(/psql exited with code 3/);
    expect(existsSync(touched)).toBe(false);
    expect(await runDatabases()).toEqual([TARGET]);
    expect(await fingerprint(TARGET)).toBe(original);
  });

  test('psql runs with --no-psqlrc and ON_ERROR_STOP; its environment: PATH, locale, libpq settings only', async () => {
    const name = await storeBackup('SELECT pg_sleep(3);\n');
    const plan = planFor(name);
    const checked = await preflight(plan, {});
    const fresh = checked.state.freshDb ?? '';
    const running = restoreIntoFresh(plan, checked.state);
    // Debian's /usr/bin/psql is a wrapper that execs /usr/lib/postgresql/<major>/bin/psql with the same arguments.
    const seen = await waitForProcess((cmdline) => /^\S*\/bin\/psql /.test(cmdline) && cmdline.includes(fresh)).finally(
      async () => cleanup(plan, (await running).state),
    );
    expect(seen.cmdline).toContain('--no-psqlrc');
    expect(seen.cmdline).toContain('--set=ON_ERROR_STOP=1');
    expect(seen.cmdline).not.toContain(PASSWORD);
    // PGSYSCONFDIR is added by Debian's wrapper (where pg_service.conf lives), not by Lifeline.
    const ours = /^(PATH|LC_ALL|LANG|PGCONNECT_TIMEOUT|PGPASSWORD|PGOPTIONS|PGSYSCONFDIR)$/;
    expect(Object.keys(seen.environ).filter((k) => !ours.test(k))).toEqual([]);
    expect(seen.environ.PGPASSWORD).toBe(PASSWORD);
  });

  test('a backup changed after its preflight is refused again by the feed into psql, which is stopped', async () => {
    const touched = marker('changed-after-preflight');
    const hostileLine = `\\! touch ${touched}`;
    // Same length, stored uncompressed (gzip level 0): the same file size, so the restore step reads the change.
    const benignLine = `--${' '.repeat(hostileLine.length - 2)}`;
    const closing = /^\\unrestrict [A-Za-z0-9]+$/m.exec(dump)?.[0] ?? '';
    const before = dump.replace(closing, `${benignLine}\n${closing}`);
    const changed = dump.replace(closing, `${hostileLine}\n${closing}`);
    const name = await storeBackup(before, 0);
    const plan = planFor(name);
    const checked = await preflight(plan, {});
    expect(checked.state.localChecked).toBe(true);
    // The work folder's copy is a hard link: rewriting the store's file in place changes what the restore reads.
    writeFileSync(join(storeDir, name), gzipSync(changed, { level: 0 }));
    const refused = await restoreIntoFresh(plan, checked.state).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(refused).toBeInstanceOf(RestoreFailedError);
    const line = changed.split('\n').indexOf(hostileLine) + 1;
    expect(refused?.message).toContain(`backup ${name} is refused: line ${line}: the psql meta-command \\! outside`);
    expect(existsSync(touched)).toBe(false);
    expect(await runDatabases(), 'the failed step dropped its fresh database itself').toEqual([TARGET]);
    await cleanup(plan, checked.state);
    expect(await fingerprint(TARGET)).toBe(original);
  });

  describe('a psql whose \\restrict is missing or can be escaped is refused', () => {
    /** A tool folder with the real pg_dump and a psql that reports `version` and records any other run. */
    function fakeTools(version: string): { tools: PgToolOptions; ran: string } {
      const binDir = mkdtempSync(join(scratch, 'bin-'));
      const ran = join(binDir, 'psql-ran');
      writeFileSync(
        join(binDir, 'psql'),
        `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "psql (PostgreSQL) ${version}"; exit 0; fi\n` +
          `touch ${ran}\nexit 1\n`,
      );
      chmodSync(join(binDir, 'psql'), 0o755);
      const realDump = execFileSync('sh', ['-c', 'command -v pg_dump']).toString().trim();
      symlinkSync(realDump, join(binDir, 'pg_dump'));
      return { tools: { binDir }, ran };
    }

    test.each([
      ['15.13 (before \\restrict)', '15.13', 'psql 15.19 or newer'],
      [
        '15.18 (\\restrict that a backquote escapes, CVE-2026-18408)',
        '15.18 (Debian 15.18-0+deb12u1)',
        'psql 15.19 or newer',
      ],
      ['17.10', '17.10', 'psql 17.11 or newer'],
      ['13.22 (end of life before the fix)', '13.22', 'psql 14.24, 15.19, 16.15, 17.11, 18.5'],
    ])(
      'psql %s: refused in preflight, naming what was found and what is needed; the fake never ran',
      async (_label, version, needed) => {
        const { tools, ran } = fakeTools(version);
        const name = await storeBackup(dump);
        const { failedIn, error } = await attempt(planFor(name, tools));
        expect(failedIn).toBe('preflight');
        expect(error).toBeInstanceOf(RestoreFailedError);
        expect(error?.message).toContain(`psql ${version.split(' ')[0]} (psql (PostgreSQL) ${version})`);
        expect(error?.message).toContain(needed);
        expect(existsSync(ran)).toBe(false);
        expect(await runDatabases()).toEqual([TARGET]);
        expect(readdirSync(workDir)).toEqual([]);
      },
    );

    test('a restore step on a worker with an old psql refuses too, before psql runs; fresh db dropped', async () => {
      const { tools, ran } = fakeTools('16.14');
      const name = await storeBackup(dump);
      const plan = planFor(name);
      const checked = await preflight(plan, {});
      const refused = await restoreIntoFresh({ ...plan, tools }, checked.state).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(refused).toBeInstanceOf(RestoreFailedError);
      expect(refused?.message).toContain('psql 16.15 or newer');
      expect(existsSync(ran)).toBe(false);
      expect(await runDatabases(), 'the failed step dropped its fresh database itself').toEqual([TARGET]);
      await cleanup(plan, checked.state);
      expect(await runDatabases()).toEqual([TARGET]);
      expect(await fingerprint(TARGET)).toBe(original);
    });

    test('psql 15.19 and 19devel are accepted', async () => {
      for (const version of ['15.19', '19devel']) {
        const { tools } = fakeTools(version);
        const name = await storeBackup('SELECT 1;\n');
        const checked = await preflight(planFor(name, tools), {});
        expect(checked.detail).toMatch(/no psql meta-command/);
        await cleanup(planFor(name), checked.state);
      }
      expect(readdirSync(workDir)).toEqual([]);
    });
  });
});
