// Plain-SQL guard: what the guard on .sql.gz restores costs. A generated application database of about
// BENCH_PLAIN_SQL_MB (default 1 GB) of incompressible text (base64 of random bytes) is dumped once as plain SQL
// (`pg_dump --no-owner --no-privileges | gzip`, pg_dump's own \restrict pair included) into a store folder. Then,
// alternating (baseline, guarded, guarded, baseline, ...), each after a CHECKPOINT:
// - baseline: CREATE DATABASE, then `gunzip -c <file> | psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1` (two child
//   processes piped directly, no shell), with the same server settings Lifeline's restore sessions use;
// - guarded: Lifeline's restore step itself (the built engine, dist/domain/recovery/logical-restore/): restoreIntoFresh
//   after its preflight, i.e. CREATE DATABASE beside the source, then the backup inflated in-process, every line
//   classified on its way, into psql restricted under Lifeline's own key.
// Target: the median guarded restore (of at least 3) at most 5% longer than the median baseline, both measured in this
// run, spread printed; a missing
// measurement fails it. Also printed (not a target): the feed alone against gunzip | psql alone; the preflight's pass
// over the whole backup, classifying each line, against the same pass without the classifier; this process's CPU and
// peak memory during the guarded restore (the feed runs here) and the machine's CPU.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';
import { onCleanup, trackChild } from './support/cleanup.mjs';
import { kbToMb, machineTicks, SAMPLE_EVERY_MS } from './support/memory.mjs';
import {
  admin,
  checkpoint,
  createAppDatabase as createGeneratedDatabase,
  rowCount,
  urlOf,
} from './support/pgbench-data.mjs';
import { median, megabytes, ratio, round, seconds, spreadOf, verdict } from './support/stats.mjs';
import { stopSwitch, tempFolder as newTempFolder } from './support/tools.mjs';

export const name = 'plain-sql-guard';

const SIZE_MB = Number(process.env.BENCH_PLAIN_SQL_MB ?? 1024);
/** Restores of each kind; they alternate, and the median of each kind is compared. */
const RUNS = Math.max(3, Number(process.env.BENCH_PLAIN_SQL_RUNS ?? 3));
const TARGET_RATIO = 1.05;
const GB = SIZE_MB / 1024;
/** Generation, one plain dump, RUNS restores of each kind and as many preflights, with room. */
export const timeLimitMs = Math.round((4 + (6 + 3 * RUNS) * Math.max(GB, 0.05)) * 60_000);
const TOOL_LIMIT_MS = Math.round((2 + 6 * GB) * 60_000);
/** What Lifeline's restore sessions get (RESTORE_SERVER_OPTIONS, pgtools/restore-fresh.ts); the baseline too. */
const SERVER_OPTIONS = '-c synchronous_commit=off';
const PREFIX = 'benchplain';

const stopper = stopSwitch(name);
const alive = () => stopper.alive();
const tempFolder = (label) => newTempFolder(label, { alive });

/** Lifeline's engine and file store, as built (`npm run bench` builds first). */
async function lifeline() {
  const engine = await import(new URL('../dist/domain/recovery/logical-restore/index.js', import.meta.url).href);
  const { createFileStore } = await import(
    new URL('../dist/adapters/backup-store/file-store.js', import.meta.url).href
  );
  return { engine, createFileStore };
}

function sqlGzName(at) {
  const iso = at.toISOString();
  const digits = iso.replace(/[^0-9]/g, '');
  return `${PREFIX}_${digits.slice(0, 8)}_${digits.slice(8, 14)}.sql.gz`;
}

/**
 * This process's CPU and peak RSS and the machine's CPU over a measurement. Light on purpose: the guarded restore's
 * feed runs in this process, and the /proc walk of support/memory.mjs's sampler (8-14 ms every 100 ms here) stalled
 * it long enough for psql to wait on an empty pipe, which a Lifeline worker does not do to itself.
 */
function lightSampler() {
  const machineAtStart = machineTicks();
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  let rssPeak = process.memoryUsage.rss();
  const rssFirst = rssPeak;
  const timer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), SAMPLE_EVERY_MS);
  return () => {
    clearInterval(timer);
    const elapsedMs = performance.now() - startedAt;
    const cpu = process.cpuUsage(cpuAtStart);
    const machine = machineTicks();
    const share = (part, whole) => (whole > 0 ? round((100 * part) / whole, 0) : null);
    return {
      process_cpu_pct_of_one_cpu: share((cpu.user + cpu.system) / 1000, elapsedMs),
      machine_busy_pct:
        machine && machineAtStart
          ? share(machine.busy - machineAtStart.busy, machine.total - machineAtStart.total)
          : null,
      rss_first_mb: kbToMb(rssFirst / 1024),
      rss_peak_mb: kbToMb(rssPeak / 1024),
    };
  };
}

/** A child process tracked for cleanup and killed by its pid after TOOL_LIMIT_MS; `exited` fails with its stderr. */
function child(command, args, options) {
  alive();
  const proc = spawn(command, args, options);
  trackChild(proc);
  let stderr = '';
  proc.stderr?.on('data', (chunk) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const unregister = onCleanup(`kill ${command} (pid ${proc.pid})`, async () => kill());
  const timer = setTimeout(kill, TOOL_LIMIT_MS);
  const exited = new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      void unregister();
      if (code === 0) resolve();
      else reject(new Error(`${command} exited ${code ?? signal}: ${stderr.trim().slice(-1500)}`));
    });
  });
  return { proc, exited };
}

/** pg_dump (plain SQL) | gzip into `path`, streamed. */
async function dumpPlain(url, path) {
  const dump = child('pg_dump', ['--no-owner', '--no-privileges', `--dbname=${url}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' },
  });
  await Promise.all([pipeline(dump.proc.stdout, createGzip(), createWriteStream(path)), dump.exited]);
}

/** One baseline: CREATE DATABASE + `gunzip -c file | psql`, timed together; checked and dropped. */
async function baseline(file, rows) {
  await checkpoint();
  alive();
  const database = `lifeline_bench_psgbase_${process.pid}_${randomBytes(3).toString('hex')}`;
  const drop = onCleanup(`drop database ${database}`, () => admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  const sampled = lightSampler();
  try {
    const t0 = performance.now();
    await admin(`CREATE DATABASE ${database}`);
    const createMs = performance.now() - t0;
    const env = { PATH: process.env.PATH ?? '', LC_ALL: 'C', PGOPTIONS: SERVER_OPTIONS };
    const gunzip = child('gunzip', ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
    // gunzip's stdout handed to psql as its stdin: the two processes are piped directly, as by a shell.
    const psql = child('psql', ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', `--dbname=${urlOf(database)}`], {
      stdio: [gunzip.proc.stdout, 'ignore', 'pipe'],
      env,
    });
    // psql holds its own copy of the pipe; ours would keep gunzip's 'close' from ever coming.
    gunzip.proc.stdout.destroy();
    await Promise.all([gunzip.exited, psql.exited]);
    const ms = performance.now() - t0;
    const usage = sampled();
    const count = await rowCount(database);
    if (count !== rows) throw new Error(`the baseline restore holds ${count} rows, not ${rows}`);
    return { ms, createMs, usage };
  } finally {
    sampled();
    await drop();
  }
}

/** One guarded restore: Lifeline's preflight (timed apart), then its restore step, timed; checked and cleaned up. */
async function guarded({ engine, plan, rows }) {
  await checkpoint();
  alive();
  const p0 = performance.now();
  const checked = await engine.preflight(plan, {});
  const preflightMs = performance.now() - p0;
  const state = checked.state;
  let restored;
  await checkpoint();
  const sampled = lightSampler();
  try {
    const t0 = performance.now();
    restored = await engine.restoreIntoFresh(plan, state);
    const ms = performance.now() - t0;
    const usage = sampled();
    const count = await rowCount(restored.state.freshDb);
    if (count !== rows) throw new Error(`the guarded restore holds ${count} rows, not ${rows}`);
    // The step reports its feed alone (fresh database created, backup in place): "with gunzip | psql in 12.3 s".
    const feed = /with gunzip \| psql in ([\d.]+) s/.exec(restored.detail);
    const feedMs = feed ? Number(feed[1]) * 1000 : NaN;
    return { ms, feedMs, usage, preflightMs, preflightDetail: checked.detail, detail: restored.detail };
  } finally {
    sampled();
    await engine.cleanup(plan, restored?.state ?? state);
  }
}

/** The preflight's pass without the classifier: the whole gzip stream inflated in-process (same sizes) and counted. */
async function inflateOnly(file) {
  let bytes = 0;
  const t0 = performance.now();
  await pipeline(
    createReadStream(file, { highWaterMark: 1024 * 1024 }),
    createGunzip({ chunkSize: 256 * 1024 }),
    new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk, _encoding, callback) {
        bytes += chunk.length;
        callback();
      },
    }),
  );
  return { ms: performance.now() - t0, bytes };
}

const middle = (values) => (values.length === 0 || values.some((v) => !Number.isFinite(v)) ? NaN : median(values));
const spreadText = (values) => {
  const s = spreadOf(values);
  return `${values.map(seconds).join(', ')}; spread ${s.spread_pct}%`;
};

export async function run(print) {
  stopper.arm();
  const free = statfsSync(tmpdir());
  const freeGb = (free.bavail * free.bsize) / 1024 ** 3;
  // The source, its .sql.gz, one restored copy at a time, WAL: about 4x the data, with room.
  const needGb = GB * 5;
  print(`free disk at ${tmpdir()}: ${round(freeGb, 1)} GB; this run needs about ${round(needGb, 1)} GB`);
  if (freeGb < needGb)
    throw new Error(`not enough free disk: ${round(freeGb, 1)} GB free, about ${round(needGb, 1)} GB needed`);

  const { engine, createFileStore } = await lifeline();
  const app = await createGeneratedDatabase(SIZE_MB, print, { label: 'psg', alive });
  const store = tempFolder('plain-store');
  const work = tempFolder('plain-work');
  const backup = sqlGzName(new Date(Date.now() - 60_000));
  const file = join(store.dir, backup);
  const d0 = performance.now();
  await dumpPlain(app.url, file);
  const sqlGzBytes = statSync(file).size;
  print(
    `pg_dump (plain) | gzip of ${megabytes(app.size)}: ${backup} ${megabytes(sqlGzBytes)} ` +
      `in ${seconds(performance.now() - d0)}`,
  );

  const plan = {
    targetUrl: app.url,
    store: createFileStore(pathToFileURL(store.dir).href),
    backupName: backup,
    format: 'sql.gz',
    safetyCopyName: `${PREFIX}_pre-restore_20260101_000000.dump`,
    verify: [],
    workDir: work.dir,
    parallelJobs: 1,
  };

  const baselines = [];
  const guardedRuns = [];
  const inflates = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 === 0 ? ['baseline', 'guarded'] : ['guarded', 'baseline'];
      for (const kind of order) {
        if (kind === 'baseline') {
          const b = await baseline(file, app.rows);
          baselines.push(b);
          print(
            `baseline ${baselines.length}/${RUNS}: CREATE DATABASE + gunzip | psql ${seconds(b.ms)} ` +
              `(CREATE DATABASE ${Math.round(b.createMs)} ms; machine CPU busy ${b.usage.machine_busy_pct}%)`,
          );
        } else {
          const g = await guarded({ engine, plan, rows: app.rows });
          guardedRuns.push(g);
          print(
            `guarded ${guardedRuns.length}/${RUNS}: Lifeline's restore step ${seconds(g.ms)} ` +
              `(its feed into psql ${seconds(g.feedMs)}; ` +
              `this process ${g.usage.process_cpu_pct_of_one_cpu}% of one CPU, ` +
              `machine busy ${g.usage.machine_busy_pct}%; ` +
              `this process peak ${g.usage.rss_peak_mb} MB RSS, ${g.usage.rss_first_mb} MB at the start); ` +
              `its preflight ${seconds(g.preflightMs)}`,
          );
          print(`  preflight said: ${g.preflightDetail}`);
          print(`  restore step said: ${g.detail}`);
          const inflate = await inflateOnly(file);
          inflates.push(inflate);
          print(
            `  the same inflating pass without the classifier: ${seconds(inflate.ms)} ` +
              `for ${megabytes(inflate.bytes)} of SQL`,
          );
        }
      }
    }
  } finally {
    await work.remove();
    await store.remove();
    await app.drop();
  }

  const baselineMs = middle(baselines.map((b) => b.ms));
  const guardedMs = middle(guardedRuns.map((g) => g.ms));
  const restoreRatio = baselines.length === RUNS && guardedRuns.length === RUNS ? ratio(guardedMs, baselineMs) : null;
  const ok = restoreRatio !== null && restoreRatio <= TARGET_RATIO;
  const feedRatio = ratio(middle(guardedRuns.map((g) => g.feedMs)), middle(baselines.map((b) => b.ms - b.createMs)));
  const preflightMs = middle(guardedRuns.map((g) => g.preflightMs));
  const inflateMs = middle(inflates.map((x) => x.ms));
  const preflightRatio = ratio(preflightMs, inflateMs);

  print(`baseline gunzip | psql: median ${seconds(baselineMs)} (${spreadText(baselines.map((b) => b.ms))})`);
  print(`guarded restore step:  median ${seconds(guardedMs)} (${spreadText(guardedRuns.map((g) => g.ms))})`);
  print(
    `ratio guarded / baseline = ${restoreRatio} ` +
      `(the feed alone against gunzip | psql alone, CREATE DATABASE left out of both: ${feedRatio})`,
  );
  print(
    `(not a target) preflight with the classifier ${seconds(preflightMs)} ` +
      `vs the same pass without it ${seconds(inflateMs)}: ${preflightRatio}x`,
  );
  print(
    `${verdict(ok)} guarded plain-SQL restore <= ${TARGET_RATIO} x gunzip | psql of the same ` +
      `${megabytes(sqlGzBytes)} .sql.gz (${restoreRatio ?? 'missing'})`,
  );

  return {
    headline:
      `guarded restore ${seconds(guardedMs)} vs gunzip | psql ${seconds(baselineMs)}: ${restoreRatio}x; ` +
      `preflight ${preflightRatio}x the same pass unclassified`,
    size_mb: SIZE_MB,
    database_bytes: app.size,
    sql_gz_bytes: sqlGzBytes,
    rows: app.rows,
    runs: RUNS,
    baseline_ms: Math.round(baselineMs),
    baseline_runs_ms: baselines.map((b) => Math.round(b.ms)),
    guarded_ms: Math.round(guardedMs),
    guarded_runs_ms: guardedRuns.map((g) => Math.round(g.ms)),
    ratio_guarded_over_baseline: restoreRatio,
    ratio_feed_over_gunzip_psql: feedRatio,
    preflight_ms: Math.round(preflightMs),
    inflate_only_ms: Math.round(inflateMs),
    ratio_preflight_over_inflate_only: preflightRatio,
    guarded_usage: guardedRuns.map((g) => g.usage),
    baseline_usage: baselines.map((b) => b.usage),
    targets: { guarded_restore_at_most_1_05x: verdict(ok) },
    pass: ok,
  };
}
