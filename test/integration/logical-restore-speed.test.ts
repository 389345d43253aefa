// Measurement, not a check: restoreIntoFresh against a plain `pg_restore -j 2` of the same dump, on the real
// PostgreSQL. Skipped unless LIFELINE_RESTORE_BENCH=1 (it writes a few hundred MB and takes about a minute):
//   LIFELINE_RESTORE_BENCH=1 npx vitest run test/integration/logical-restore-speed.test.ts
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, expect, test } from 'vitest';
import { createFileStore } from '../../src/adapters/backup-store/file-store.js';
import {
  cleanup,
  namesOf,
  preflight,
  restoreIntoFresh,
  type LogicalRestorePlan,
} from '../../src/domain/recovery/logical-restore/index.js';
import { dumpToStore } from '../../src/pgtools/dump.js';

const ADMIN_URL = process.env.LIFELINE_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROWS = Number(process.env.LIFELINE_RESTORE_BENCH_ROWS ?? 1_500_000);
const SFX = randomBytes(4).toString('hex');
const SOURCE = `llbench_src_${SFX}`;
const BASELINE = `llbench_base_${SFX}`;
const dirs: string[] = [];

function urlFor(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

async function sql(database: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor(database) });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

afterAll(async () => {
  await sql('postgres', `DROP DATABASE IF EXISTS ${SOURCE} WITH (FORCE)`).catch(() => undefined);
  await sql('postgres', `DROP DATABASE IF EXISTS ${BASELINE} WITH (FORCE)`).catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test.skipIf(process.env.LIFELINE_RESTORE_BENCH !== '1')(
  'restoreIntoFresh vs plain pg_restore -j 2',
  async () => {
    await sql('postgres', `CREATE DATABASE ${SOURCE}`);
    // Two tables (so -j 2 has something to share), incompressible text, two indexes each.
    for (const table of ['orders', 'events']) {
      await sql(
        SOURCE,
        `CREATE TABLE ${table} AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) AS payload,
                now() - random() * interval '365 days' AS created_at FROM generate_series(1, ${ROWS / 2}) g;
         ALTER TABLE ${table} ADD PRIMARY KEY (id); CREATE INDEX ON ${table} (created_at);`,
      );
    }
    const storeDir = mkdtempSync(join(tmpdir(), 'llbench-store-'));
    const workDir = mkdtempSync(join(tmpdir(), 'llbench-work-'));
    dirs.push(storeDir, workDir);
    const store = createFileStore(pathToFileURL(storeDir).href);
    const name = 'llbench_20260101_000000.dump';
    // Peak RSS while our code streams the dump around: it must not grow with the dump's size.
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    let t = Date.now();
    const { size } = await dumpToStore(urlFor(SOURCE), store, name);
    const dumpMs = Date.now() - t;
    const file = join(storeDir, name);

    const plain: number[] = [];
    const ours: number[] = [];
    const details: string[] = [];
    let preflightMs = 0;
    const plan: LogicalRestorePlan = {
      targetUrl: urlFor(SOURCE),
      store,
      backupName: name,
      format: 'custom',
      safetyCopyName: 'llbench_pre-restore_20260101_000000.dump',
      verify: [],
      workDir,
      parallelJobs: 2,
    };
    const timePlain = async (): Promise<void> => {
      await sql('postgres', `DROP DATABASE IF EXISTS ${BASELINE} WITH (FORCE)`);
      await sql('postgres', 'CHECKPOINT');
      t = Date.now();
      await sql('postgres', `CREATE DATABASE ${BASELINE} TEMPLATE template0`);
      await run('pg_restore', [
        '-j',
        '2',
        '--no-owner',
        '--no-privileges',
        '--exit-on-error',
        '-d',
        urlFor(BASELINE),
        file,
      ]);
      plain.push(Date.now() - t);
    };
    const timeOurs = async (): Promise<void> => {
      t = Date.now();
      const checked = await preflight(plan, {});
      preflightMs = Date.now() - t;
      await sql('postgres', 'CHECKPOINT');
      t = Date.now();
      const restored = await restoreIntoFresh(plan, checked.state);
      ours.push(Date.now() - t);
      details.push(restored.detail);
      expect(namesOf(SOURCE, restored.state.runId ?? '').fresh).toBe(restored.state.freshDb);
      await cleanup(plan, restored.state);
    };
    // Alternate the order, so neither side always runs on a warmer (or busier) server.
    for (let round = 0; round < 4; round += 1) {
      if (round % 2 === 0) {
        await timePlain();
        await timeOurs();
      } else {
        await timeOurs();
        await timePlain();
      }
    }
    clearInterval(sampler);
    const line =
      `rows ${ROWS}, dump ${(size / 1048576).toFixed(0)} MB in ${(dumpMs / 1000).toFixed(1)} s; ` +
      `plain CREATE DATABASE + pg_restore -j 2 median ${(median(plain) / 1000).toFixed(2)} s [${plain.join(', ')} ms]; ` +
      `restoreIntoFresh median ${(median(ours) / 1000).toFixed(2)} s [${ours.join(', ')} ms] (ratio ${(median(ours) / median(plain)).toFixed(2)}); ` +
      `preflight (download + pg_restore --list) ${(preflightMs / 1000).toFixed(2)} s; ` +
      `peak RSS ${(rssPeak / 1048576).toFixed(0)} MB (${((rssPeak - rssBefore) / 1048576).toFixed(0)} MB above the start)`;
    console.log(line);
    for (const d of details) console.log(d);
  },
  600_000,
);
