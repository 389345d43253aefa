// Backups that can be trusted, through the backup, restore and drill jobs' own steps against
// the real PostgreSQL and a file:// store: a backup Lifeline made is restored only while it matches the catalogue's
// SHA-256; one made elsewhere restores and its plan says its checksum could not be checked; the safety copy a restore
// takes is a catalogued, checked backup with its sidecar and row counts; a drill that could not make a check says so
// in its headline and is no full pass in /metrics; a backup named in the future is listed but never `latest`.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MemoryEcs, MemoryLogs, MemoryRds } from '../../src/adapters/aws/memory.js';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { MemoryPager } from '../../src/adapters/pagerduty/memory.js';
import { AlertDesk } from '../../src/domain/backups/alerts.js';
import { createSlackAlertNotifier } from '../../src/delivery/slack/alert-notifier.js';
import { backupFileName, pendingFinalName } from '../../src/domain/backups/names.js';
import { RpoWatch } from '../../src/domain/backups/rpo-watch.js';
import { createBackupStore } from '../../src/adapters/backup-store/stores.js';
import { sidecarName } from '../../src/domain/backups/take.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { createLogger } from '../../src/shared/log.js';
import { createMetrics, observeDrill } from '../../src/shared/metrics.js';
import type { KindSummary } from '../../src/domain/recovery/kind.js';
import { z } from 'zod';
import { backupKind } from '../../src/domain/recovery/kinds/backup/index.js';
import { drillKind } from '../../src/domain/recovery/kinds/drill/index.js';
import { restoreKind } from '../../src/domain/recovery/kinds/restore/index.js';
import type { JobParams, RecoveryJob } from '../../src/domain/recovery/model.js';
import { backupCatalogue, listBackups, type QueryDeps } from '../../src/domain/recovery/queries.js';
import {
  renderBackupCatalogue,
  renderBackupListing,
  scheduledResultMessage,
} from '../../src/delivery/slack/recovery-replies.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testConfigYaml } from '../support/test-config.js';
import { withClient } from '../support/recovery.js';

const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const USERS = 300;
const ORDERS = 700;

let state: TestDatabase;
let app: TestDatabase;
let db: Db;
let file: FileConfig;
let folder: string;
let storeUrl: string;
const metrics = createMetrics();
const log = createLogger('silent', []);

/** Every row of the app database, hashed: equal means the same data. */
const fingerprint = () =>
  withClient(app.url, async (c) => {
    const { rows } = await c.query<{ u: string; o: string }>(
      `SELECT (SELECT md5(string_agg(u::text, ';' ORDER BY id)) FROM users u) AS u,
              (SELECT md5(string_agg(o::text, ';' ORDER BY id)) FROM orders o) AS o`,
    );
    return `${rows[0]?.u}/${rows[0]?.o}`;
  });

const counts = () =>
  withClient(app.url, async (c) => {
    const { rows } = await c.query<{ u: string; o: string }>(
      'SELECT (SELECT count(*) FROM users)::text AS u, (SELECT count(*) FROM orders)::text AS o',
    );
    return { 'public.orders': Number(rows[0]?.o), 'public.users': Number(rows[0]?.u) };
  });

/** Databases beside the app's (a restore's fresh, old or failed copy, a drill's scratch one). */
const leftovers = () =>
  withClient(ADMIN_URL, async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> $1',
      [app.name],
    );
    return rows.map((r) => r.datname);
  });

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const files = () => readdirSync(folder).sort();

function kinds() {
  const notifier = createSlackAlertNotifier(new MemoryChat(), file);
  const alerts = new AlertDesk({ db, pager: new MemoryPager(), notifier, file, log });
  const rpo = new RpoWatch({ file, storeFor: createBackupStore, alerts, observe: () => undefined, log });
  const rds = new MemoryRds();
  return {
    backup: backupKind({ db, storeFor: createBackupStore, rds, alerts, rpo, observe: () => undefined, log }),
    restore: restoreKind({ db, storeFor: createBackupStore, rds, parallelJobs: 2, pollSeconds: 1, maxWaitSeconds: 10 }),
    drill: drillKind({
      db,
      storeFor: createBackupStore,
      parallelJobs: 2,
      observe: (env, passed, ms, skipped) => observeDrill(metrics, env, passed, ms, skipped),
    }),
  };
}

interface Ran {
  readonly plan: string;
  readonly details: string[];
  readonly failed: { step: string; error: Error; recovery: string | undefined } | undefined;
  readonly job: RecoveryJob;
  /** The kind's state as the runner would store it. */
  readonly state: object;
  readonly summary: KindSummary;
}

let jobs = 0;
/** Plans and runs one job the way the runner does: each step in order; on a failure, the kind's onFailure. */
async function runJob(params: Extract<JobParams, { kind: 'backup' | 'restore' | 'drill' }>): Promise<Ran> {
  const kind = kinds()[params.kind];
  const { rows } = await db.query<{ number: number }>(
    `INSERT INTO recovery_jobs (kind, env, target, params, requested_by, requested_in, state, needs_approval)
     VALUES ($1, 'prod', $2, $3, 'U0LEAD', 'C0EMERGENCY', 'running', false) RETURNING number`,
    [params.kind, `prod/${params.kind}-${++jobs}`, JSON.stringify(params)],
  );
  const job = {
    number: rows[0]!.number,
    kind: params.kind,
    env: 'prod',
    params,
    stepState: {},
    createdAt: new Date(),
  } as unknown as RecoveryJob;
  const env = file.environments.prod!;
  const signal = new AbortController().signal;
  const open = kind.open(job, env, 'planning');
  const planned = await open.plan(signal);
  const plan = typeof planned === 'string' ? planned : planned.nothingToChange;
  const details: string[] = [];
  for (const step of kind.stepList(job, env)) {
    try {
      details.push(await open.run(step.id, signal, () => undefined));
    } catch (err) {
      const recovery = await open.onFailure(step.id, 'failed', signal);
      return {
        plan,
        details,
        failed: { step: step.name, error: err as Error, recovery },
        job,
        state: open.state,
        summary: open.summarise(false),
      };
    }
  }
  return { plan, details, failed: undefined, job, state: open.state, summary: open.summarise(true) };
}

/** The name of the backup a backup job took, from its state. */
function takenName(ran: Ran): string {
  return z.object({ taken: z.object({ name: z.string() }) }).parse(ran.state).taken.name;
}

/** A custom-format dump of the app database made by another tool (plain pg_dump): no catalogue entry. */
function dumpElsewhere(name: string): string {
  const path = join(folder, name);
  execFileSync('pg_dump', ['--format=custom', '--no-owner', `--file=${path}`, `--dbname=${app.url}`]);
  return path;
}

const queryDeps = (): QueryDeps => ({
  db,
  file,
  storeFor: createBackupStore,
  rds: new MemoryRds(),
  ecs: new MemoryEcs(),
  logs: new MemoryLogs(),
});

beforeAll(async () => {
  state = await createTestDatabase();
  app = await createTestDatabase();
  await withClient(app.url, async (c) => {
    await c.query(`CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
      INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, ${USERS}) g;
      CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users (id), total int NOT NULL);
      INSERT INTO orders SELECT g, 1 + g % ${USERS}, g * 3 FROM generate_series(1, ${ORDERS}) g;`);
  });
  db = createPool(state.url, log);
  await migrate(db);
  folder = mkdtempSync(join(tmpdir(), 'lltest-trusted-'));
  storeUrl = `file://${folder}`;
  file = parseConfigText(
    testConfigYaml({
      environmentsYaml: `  prod:
    database: { url: "${app.url}", verify: [SELECT COUNT(*) FROM users, SELECT COUNT(*) FROM orders] }
    backups: { store: "${storeUrl}", prefix: shop, retention_days: 7, rpo_minutes: 60, drill_schedule: "off" }`,
    }),
    { PD_KEY_ONCALL: 'rk-o', PD_KEY_LEAD: 'rk-l', PD_KEY_CTO: 'rk-c', PD_KEY_CEO: 'rk-e' },
  );
}, 60_000);

afterAll(async () => {
  await db?.end();
  await state?.drop();
  await app?.drop();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe('a backup Lifeline made is restored only while its SHA-256 matches the catalogue', () => {
  test('a changed file fails preflight naming the file and both checksums; the target is untouched and nothing is left over', async () => {
    const backup = await runJob({ kind: 'backup', trigger: 'command' });
    expect(backup.failed).toBeUndefined();
    const name = takenName(backup);
    const path = join(folder, name);
    const catalogued = sha256(path);
    // Someone changes the stored file: same size, other bytes (its table of contents still reads).
    const bytes = readFileSync(path);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
    writeFileSync(path, bytes);
    const changed = sha256(path);
    const before = await fingerprint();

    const restore = await runJob({ kind: 'restore', source: { type: 'file', name } });
    expect(restore.plan).toContain(
      `Lifeline made this backup: preflight checks that its SHA-256 still matches the catalogue (${catalogued.slice(0, 12)}…)`,
    );
    expect(restore.failed?.step).toBe('preflight: target reachable, backup readable and intact');
    expect(restore.failed?.error.message).toBe(
      `backup ${name} is not the file Lifeline made: its sha256 is ${changed.slice(0, 12)}…, the catalogue's is ${catalogued.slice(0, 12)}…`,
    );
    expect(restore.failed?.recovery).toMatch(/target database was not changed/);
    expect(restore.details).toEqual([]);
    expect(await fingerprint()).toBe(before);
    expect(await leftovers()).toEqual([]);
    expect(files()).toEqual([name, sidecarName(name)]);

    // The drill refuses it the same way.
    const drill = await runJob({ kind: 'drill', trigger: 'command' });
    expect(drill.failed?.error.message).toContain(`backup ${name} is not the file Lifeline made`);
    expect(await leftovers()).toEqual([]);

    // Put back as it was, it restores again.
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
    writeFileSync(path, bytes);
    const again = await runJob({ kind: 'restore', source: { type: 'file', name } });
    expect(again.failed).toBeUndefined();
    expect(again.details[0]).toContain("its sha256 matches Lifeline's catalogue");
    expect(await fingerprint()).toBe(before);
  }, 120_000);
});

describe('a backup made elsewhere, and the safety copy', () => {
  test('restores, its plan says its checksum could not be checked, and the safety copy is a checked, catalogued backup with its sidecar and row counts', async () => {
    for (const f of files()) rmSync(join(folder, f));
    const original = await fingerprint();
    const name = backupFileName('shop', new Date(Date.now() - 60_000));
    dumpElsewhere(name);
    // The outage: most orders gone.
    await withClient(app.url, (c) => c.query('DELETE FROM orders WHERE id > 100'));
    const replaced = await counts();
    expect(replaced).toEqual({ 'public.orders': 100, 'public.users': USERS });

    const restore = await runJob({ kind: 'restore', source: { type: 'latest' } });
    expect(restore.failed, restore.failed?.error.message).toBeUndefined();
    expect(restore.plan).toContain(`from ${name}`);
    expect(restore.plan).toContain(
      "This backup is not in Lifeline's catalogue (it was made elsewhere), so its checksum could not be checked",
    );
    expect(restore.details[0]).toContain(
      'no catalogue entry (not made by Lifeline), so its checksum could not be checked',
    );
    expect(await fingerprint()).toBe(original);

    const copy = files().find((f) => f.startsWith('shop_pre-restore_') && f.endsWith('.dump'))!;
    expect(copy).toBeDefined();
    expect(files()).toEqual([copy, sidecarName(copy), name].sort());
    expect(files().filter((f) => pendingFinalName(f) !== undefined)).toEqual([]);
    const sha = sha256(join(folder, copy));
    expect(readFileSync(join(folder, sidecarName(copy)), 'utf8')).toBe(`${sha}  ${copy}\n`);
    const { rows } = await db.query<{
      env: string;
      job: number;
      safety_copy: boolean;
      sha256: string;
      size_bytes: string;
      table_rows: Record<string, number>;
      checked: boolean;
    }>(
      `SELECT env, job, safety_copy, sha256, size_bytes, table_rows, checked_at IS NOT NULL AS checked
         FROM backups WHERE name = $1`,
      [copy],
    );
    expect(rows).toEqual([
      {
        env: 'prod',
        job: restore.job.number,
        safety_copy: true,
        sha256: sha,
        size_bytes: String(readFileSync(join(folder, copy)).length),
        table_rows: replaced,
        checked: true,
      },
    ]);
    expect(restore.details.find((d) => d.startsWith('Safety copy'))).toMatch(
      /read back .* 2 tables, 400 rows counted; pg_restore --list reads \d+ entries/,
    );

    // /dr backups: the safety copy's checksum is checked; the other backup has none.
    const text = renderBackupCatalogue(await backupCatalogue(queryDeps(), 'prod')).text;
    const line = (n: string) => text.split('\n').find((l) => l.includes(`\`${n}\``)) ?? '';
    expect(line(copy)).toContain(`sha256 ${sha.slice(0, 12)} checked`);
    expect(line(copy)).toContain('_(safety copy)_');
    expect(line(name)).toContain('no checksum (not taken by Lifeline)');

    // Restoring the safety copy (undoing the restore) is checked against its catalogue entry.
    const undo = await runJob({ kind: 'restore', source: { type: 'file', name: copy } });
    expect(undo.plan).toContain('Lifeline made this backup');
    expect(undo.failed, undo.failed?.error.message).toBeUndefined();
    expect(await counts()).toEqual(replaced);
  }, 180_000);
});

describe('drills', () => {
  test('a drill of a backup made elsewhere passes, but says in its headline that 2 checks were skipped, records them, and is no full pass in /metrics', async () => {
    for (const f of files()) rmSync(join(folder, f));
    const name = backupFileName('shop', new Date(Date.now() - 30_000));
    dumpElsewhere(name);
    const drill = await runJob({ kind: 'drill', trigger: 'schedule' });
    expect(drill.failed, drill.failed?.error.message).toBeUndefined();
    expect(drill.plan).toContain('Lifeline did not take this backup, so its checksum and row counts cannot be checked');
    expect(drill.summary.headline).toBe(
      `Restore drill of prod passed with ${name}, but 2 checks were skipped: checksum and row counts (the backup was not taken by Lifeline, so none were recorded).`,
    );
    expect(drill.summary.incomplete).toBe(true);
    expect(drill.summary.verified).toEqual(
      expect.arrayContaining([
        '– checksum: skipped (the backup was not taken by Lifeline, so none were recorded)',
        '– row counts: skipped (the backup was not taken by Lifeline, so none were recorded)',
      ]),
    );
    const { rows } = await db.query<{ passed: boolean; skipped_checks: unknown }>(
      'SELECT passed, skipped_checks FROM drills WHERE job = $1',
      [drill.job.number],
    );
    expect(rows).toEqual([
      {
        passed: true,
        skipped_checks: [
          { check: 'checksum', why: 'the backup was not taken by Lifeline, so none were recorded' },
          { check: 'row counts', why: 'the backup was not taken by Lifeline, so none were recorded' },
        ],
      },
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lifeline_drill_last_passed\{env="prod"\} 0$/m);
    expect(text).toMatch(/^lifeline_drill_last_skipped_checks\{env="prod"\} 2$/m);
    // The scheduled drill's line in the channel is a warning, not a tick.
    const line = scheduledResultMessage(drill.job, [], {
      succeeded: true,
      totalMs: 1000,
      ...drill.summary,
      headline: [drill.summary.headline],
    }).text;
    expect(line).toMatch(/^:warning: JOB-\d+ Restore drill of prod passed with .*, but 2 checks were skipped/);
    // /dr backups says so too.
    const listing = renderBackupCatalogue(await backupCatalogue(queryDeps(), 'prod')).text;
    expect(listing).toContain(`Last drill: :warning: passed, 2 checks skipped (checksum, row counts)`);
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  test('a drill of a backup Lifeline made makes every check: a full pass', async () => {
    for (const f of files()) rmSync(join(folder, f));
    const backup = await runJob({ kind: 'backup', trigger: 'command' });
    const name = takenName(backup);
    const drill = await runJob({ kind: 'drill', trigger: 'schedule' });
    expect(drill.failed, drill.failed?.error.message).toBeUndefined();
    expect(drill.summary.headline).toBe(`Restore drill of prod passed with ${name}.`);
    expect(drill.summary.incomplete).toBeUndefined();
    expect(drill.summary.verified).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^✓ checksum: sha256 [0-9a-f]{12} matches the catalogue$/),
        `✓ row counts: all 2 tables match the backup (${(USERS + 100).toLocaleString('en-US')} rows)`,
      ]),
    );
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lifeline_drill_last_passed\{env="prod"\} 1$/m);
    expect(text).toMatch(/^lifeline_drill_last_skipped_checks\{env="prod"\} 0$/m);
    expect(
      scheduledResultMessage(drill.job, [], {
        succeeded: true,
        totalMs: 1000,
        ...drill.summary,
        headline: [drill.summary.headline],
      }).text,
    ).toMatch(/^:white_check_mark: /);
  }, 120_000);
});

describe('a backup named in the future', () => {
  test('is never latest (restore, drill, RPO) but is listed, marked, and restorable by name', async () => {
    for (const f of files()) rmSync(join(folder, f));
    const now = backupFileName('shop', new Date(Date.now() - 120_000));
    const future = backupFileName('shop', new Date(Date.now() + 86_400_000));
    dumpElsewhere(now);
    dumpElsewhere(future);

    const restore = await runJob({ kind: 'restore', source: { type: 'latest' } });
    expect(restore.plan).toContain(`from ${now}`);
    const drill = await runJob({ kind: 'drill', trigger: 'command' });
    expect(drill.plan).toContain(`restore ${now}`);
    const notifier = createSlackAlertNotifier(new MemoryChat(), file);
    const alerts = new AlertDesk({ db, pager: new MemoryPager(), notifier, file, log });
    const reading = await new RpoWatch({
      file,
      storeFor: createBackupStore,
      alerts,
      observe: () => undefined,
      log,
    }).check('prod');
    expect(reading.newest?.name).toBe(now);

    const listing = await listBackups(queryDeps(), 'prod');
    expect(listing.backups.map((b) => [b.name, b.inFuture])).toEqual(
      expect.arrayContaining([
        [future, true],
        [now, false],
      ]),
    );
    const listed = renderBackupListing(listing).text.split('\n');
    expect(listed.find((l) => l.includes(future))).toContain('_(time in the future, never latest)_');
    expect(listed.find((l) => l.includes(now))).not.toContain('future');
    const catalogued = renderBackupCatalogue(await backupCatalogue(queryDeps(), 'prod')).text.split('\n');
    expect(catalogued.find((l) => l.includes(future))).toMatch(
      /time in the future, .*_\(time in the future, never latest\)_/,
    );

    const byName = await runJob({ kind: 'restore', source: { type: 'file', name: future } });
    expect(byName.plan).toContain('Its name carries a time in the future');
    expect(byName.failed, byName.failed?.error.message).toBeUndefined();
  }, 180_000);
});
