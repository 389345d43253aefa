// Backup: Lifeline's /dr backup job on a generated application database of about BENCH_BACKUP_MB (default 1 GB) of
// incompressible text (base64 of random bytes), against a plain `pg_dump -Fc` of the same database to a file, each
// after a CHECKPOINT. At least 3 runs of each side, in turns, each job in a fresh Lifeline process; the verdict
// compares medians and the spread is printed. Timed from the signed command to the job's result message ("JOB-n
// succeeded"), and the dump step alone (from recovery_steps), since the job also reads the stored backup back and
// applies retention. Memory: the Lifeline process's VmRSS sampled every 100 ms during the job (and VmHWM, reset before
// the command), its child processes (pg_dump, pg_restore --list) summed separately; then a database twice the size is
// generated and the job runs again in a fresh Lifeline process, to see that the peak stays flat. The stored backup is
// checked too: pg_restore --list reads it, its SHA-256 equals its sidecar's and the catalogue's, and the catalogue's
// row counts add up to the generated rows.
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { jobBenchLimitMs, jobSteps, logFigures, startJobLifeline, TOOL_LIMIT_MS } from './support/job-run.mjs';
import { MemorySampler } from './support/memory.mjs';
import { APP_TABLES, backupNamePattern, checkpoint, createAppDatabase } from './support/pgbench-data.mjs';
import { CHANNEL } from './support/processes.mjs';
import { medianRun, memoryVerdicts, printMemoryAndLog, printSteps, runInTurns, twoRounds } from './support/rounds.mjs';
import { lastWords } from './support/slack-posts.mjs';
import { commandBody, postSigned } from './support/slack-requests.mjs';
import { megabytes, ratio, seconds, spreadOf, verdict, withSpread } from './support/stats.mjs';
import { fsyncFile, runProgram, stopSwitch, tempFolder, waitFor } from './support/tools.mjs';

export const name = 'backup';

const SIZE_MB = Number(process.env.BENCH_BACKUP_MB ?? 1024);
/** 0 = no baseline at the doubled size; the time target is judged at 1x. */
const DOUBLE_BASELINE = process.env.BENCH_BACKUP_DOUBLE_BASELINE !== '0';
/** Runs of each side at 1x (baseline dumps and jobs, in turns); the verdict compares their medians. */
const RUNS = Math.max(3, Number(process.env.BENCH_BACKUP_RUNS ?? 3));
const TARGET_RATIO = 1.1;
const GB = SIZE_MB / 1024;
/** Everything scales with the data: generation, RUNS baseline dumps and jobs with their checks at 1x, then 2x. */
export const timeLimitMs = jobBenchLimitMs(RUNS, GB);

const ENV = 'benchdb';
const PREFIX = 'benchapp';
const REQUESTER = 'U0ONCALL'; // a responder: only responders may request a job
const STEP_DUMP = 'pg_dump into the store';
const STEP_CHECK = 'check the stored backup';
const STEP_RETENTION = 'retention';

/** Flipped by the first cleanup: a benchmark that ran out of time must not create anything after its cleanup ran. */
const stopper = stopSwitch('backup');
const alive = () => stopper.alive();

// ---- the stored backup ---------------------------------------------------------------------------------------------

/** SHA-256 (hex) of a file, streamed. */
function sha256File(path) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .once('error', reject)
      .once('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * What the job left in the store folder and the catalogue, checked: exactly one backup named as the README says
 * plus its `.sha256` sidecar (no temporary leftovers), pg_restore --list reads it and lists both tables' data, its
 * SHA-256 equals the sidecar's and the catalogue's, and the catalogue's sizes and row counts match. Throws on any
 * difference; returns the figures.
 */
async function checkStore({ storeDir, catalogue, rows, gb }) {
  const files = readdirSync(storeDir);
  const dumps = files.filter((f) => backupNamePattern(PREFIX).test(f));
  if (dumps.length !== 1) throw new Error(`the store holds ${dumps.length} backups, not 1: ${JSON.stringify(files)}`);
  const backup = dumps[0];
  const sidecar = `${backup}.sha256`;
  const others = files.filter((f) => f !== backup && f !== sidecar);
  if (others.length > 0)
    throw new Error(`the store holds more than ${backup} and its sidecar: ${JSON.stringify(others)}`);
  if (!files.includes(sidecar))
    throw new Error(`the store holds ${backup} but no ${sidecar}: ${JSON.stringify(files)}`);
  const path = join(storeDir, backup);
  const bytes = statSync(path).size;
  // Written to disk before the next baseline, so that its writeback does not compete with that baseline.
  const s0 = performance.now();
  fsyncFile(path);
  const fsyncMs = performance.now() - s0;

  const h0 = performance.now();
  const sha256 = await sha256File(path);
  const hashMs = performance.now() - h0;
  const sidecarText = readFileSync(join(storeDir, sidecar), 'utf8');
  const sidecarSha = /^([0-9a-f]{64})\b/i.exec(sidecarText.trim())?.[1]?.toLowerCase();
  if (sidecarSha !== sha256)
    throw new Error(
      `${backup} has SHA-256 ${sha256} but its sidecar says ${JSON.stringify(sidecarText.slice(0, 200))}`,
    );

  const listed = await runProgram('pg_restore', ['--list', path], {
    limitMs: TOOL_LIMIT_MS(gb),
    captureStdout: true,
    alive,
  });
  const entries = listed.stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';'));
  const missing = APP_TABLES.filter((t) => !entries.some((e) => new RegExp(`\\bTABLE DATA \\S+ ${t}\\b`).test(e)));
  if (missing.length > 0)
    throw new Error(
      `pg_restore --list of ${backup} has no TABLE DATA for ${missing.join(', ')}:\n${listed.stdout.slice(0, 2000)}`,
    );

  if (catalogue.length !== 1)
    throw new Error(
      `the backups catalogue has ${catalogue.length} rows for ${ENV}, not 1: ${JSON.stringify(catalogue).slice(0, 1000)}`,
    );
  const row = catalogue[0];
  const problems = [];
  if (row.name !== backup) problems.push(`name ${row.name}, the store holds ${backup}`);
  if (Number(row.size_bytes) !== bytes) problems.push(`size_bytes ${row.size_bytes}, the file has ${bytes}`);
  if (String(row.sha256).toLowerCase() !== sha256) problems.push(`sha256 ${row.sha256}, the file has ${sha256}`);
  const tableRows = row.table_rows && typeof row.table_rows === 'object' ? row.table_rows : {};
  const counted = Object.values(tableRows).reduce((a, b) => a + Number(b), 0);
  if (counted !== rows)
    problems.push(`table_rows ${JSON.stringify(tableRows)} add up to ${counted}, the database holds ${rows}`);
  if (problems.length > 0)
    throw new Error(`the catalogue row of ${backup} disagrees with the store: ${problems.join('; ')}`);

  return {
    name: backup,
    bytes,
    sha256,
    sha256_matches_sidecar: true,
    sha256_matches_catalogue: true,
    pg_restore_list_entries: entries.length,
    pg_restore_list_ms: Math.round(listed.ms),
    sha256_read_ms: Math.round(hashMs),
    fsync_after_job_ms: Math.round(fsyncMs),
    catalogue_table_rows: tableRows,
    catalogue_duration_ms: row.duration_ms === undefined || row.duration_ms === null ? null : Number(row.duration_ms),
  };
}

// ---- one measured backup -------------------------------------------------------------------------------------------

/**
 * Generates the database, then times baselines and Lifeline's job in turns (B,J,J,B,B,J,..): `baselineRuns` dumps and
 * `jobRuns` jobs, each job through a signed Slack command in a fresh Lifeline process with its own state database.
 * Figures are the median of the runs; memory is the run with the highest peak. Everything it creates is removed
 * before it returns.
 */
async function measure({ sizeMb, label, withBaseline, slack, pagerduty, print }) {
  const gb = sizeMb / 1024;
  const app = await createAppDatabase(sizeMb, print, { label: 'bkp', alive });
  const store = tempFolder('store', { alive });
  const work = tempFolder('work', { alive });
  const base = tempFolder('baseline', { alive });
  const out = { label, requested_mb: sizeMb, rows: app.rows, database_bytes: app.size, baseline_runs_ms: [], runs: [] };

  /** One baseline: CHECKPOINT, then timed pg_dump -Fc to a file; then (untimed) fsync and removal of the file. */
  const timeBaseline = async (i, of) => {
    await checkpoint();
    alive();
    const path = join(base.dir, `baseline_${i}.dump`);
    const startedAt = Date.now();
    let sampler;
    try {
      const dumped = await runProgram('pg_dump', ['--format=custom', `--file=${path}`, app.url], {
        limitMs: TOOL_LIMIT_MS(gb),
        alive,
        onStart: (pid) => (sampler = new MemorySampler(pid, { rootIsChild: true })),
      });
      const memory = sampler?.stop();
      const cpu = sampler?.window(startedAt, Date.now());
      const bytes = statSync(path).size;
      const s0 = performance.now();
      fsyncFile(path);
      const fsyncMs = performance.now() - s0;
      out.baseline_runs_ms.push(Math.round(dumped.ms));
      (out.baseline_fsync_ms ??= []).push(Math.round(fsyncMs));
      (out.baseline_cpu ??= []).push(cpu);
      out.baseline_dump_bytes = bytes;
      out.baseline_pg_dump_peak_mb = Math.max(out.baseline_pg_dump_peak_mb ?? 0, memory?.children_peak_mb ?? 0);
      print(
        `${label}: baseline ${i + 1}/${of} pg_dump -Fc to a file: ${seconds(dumped.ms)} → ${megabytes(bytes)} ` +
          `(then fsync ${Math.round(fsyncMs)} ms, not timed; pg_dump peak ${memory?.children_peak_mb} MB RSS; machine CPU busy ${cpu?.machine_busy_pct}%, ` +
          `iowait ${cpu?.machine_iowait_pct}%, dirty page cache ${cpu?.dirty_at_start_mb} MB at start, peak ${cpu?.dirty_peak_mb} MB)`,
      );
    } finally {
      sampler?.stop();
      rmSync(path, { force: true });
    }
  };

  /** One job, command to result, in a fresh Lifeline process; its backup is checked, then removed from the store. */
  const timeJob = async (i, of) => {
    const { lifeline, pool, stop, sampled } = await startJobLifeline({
      tag: `bkp${label}`,
      env: ENV,
      prefix: PREFIX,
      appUrl: app.url,
      verifyTable: APP_TABLES[0],
      storeDir: store.dir,
      workDir: work.dir,
      slack,
      pagerduty,
      gb,
      hwmCovers: 'the job (reset before the command)',
      alive,
    });
    const run = {};
    try {
      const postsBefore = slack.posts.length;
      const responsesBefore = slack.responses.length;

      const { job, result, startedAt, sampler, memory } = await sampled(postsBefore, async () => {
        const sent = await postSigned(
          lifeline.eventsUrl,
          commandBody({
            command: '/dr',
            text: `backup ${ENV}`,
            user_id: REQUESTER,
            channel_id: CHANNEL,
            response_url: slack.newResponseUrl(),
          }),
        );
        if (sent.status !== 200) throw new Error(`/dr backup answered ${sent.status} ${sent.error ?? ''}`);
        run.command_ack_ms = Math.round(sent.ms);
        // "JOB-n: backup of <env> requested. …", in the ack itself or through the response_url; anything else is a
        // refusal.
        const reply = await waitFor(
          'the reply to /dr backup',
          () => sent.ackText || slack.responses.slice(responsesBefore)[0]?.text,
          30_000,
          { alive },
        ).catch((err) => {
          throw new Error(`${err.message}${lastWords(slack, lifeline)}`);
        });
        const number = /\bJOB-(\d+): backup of /.exec(reply)?.[1];
        if (number === undefined)
          throw new Error(
            `/dr backup ${ENV} did not start a job: ${reply.slice(0, 1000)}${lastWords(slack, lifeline)}`,
          );
        run.reply_says = reply.slice(0, 200);
        return Number(number);
      });

      run.job = job;
      run.job_ms = result.at - startedAt;
      const plan = slack.posts
        .slice(postsBefore)
        .find((p) => p.channel === CHANNEL && p.thread_ts === undefined && p.text.startsWith(`JOB-${job}:`));
      run.command_to_plan_ms = plan ? plan.at - startedAt : null;
      const { rows: steps, steps: measured } = await jobSteps(pool, job, sampler);
      run.steps = measured;
      const dumpStep = run.steps.find((s) => s.name === STEP_DUMP);
      if (!dumpStep)
        throw new Error(`JOB-${job} has no step "${STEP_DUMP}": ${JSON.stringify(run.steps.map((s) => s.name))}`);
      run.dump_step_ms = dumpStep.ms;
      run.check_step_ms = run.steps.find((s) => s.name === STEP_CHECK)?.ms ?? null;
      run.retention_step_ms = run.steps.find((s) => s.name === STEP_RETENTION)?.ms ?? null;
      run.command_to_first_step_ms = steps.length > 0 ? Math.round(Number(steps[0].started) - startedAt) : null;
      const dumpRow = steps.find((st) => st.name === STEP_DUMP);
      run.command_to_dump_done_ms = Math.round(Number(dumpRow.started) + Number(dumpRow.ms) - startedAt);
      run.memory = memory;
      run.result_says = result.text.slice(0, 200);
      const { rows: catalogue } = await pool.query('SELECT * FROM backups WHERE env = $1 ORDER BY id', [ENV]);
      run.stored = await checkStore({ storeDir: store.dir, catalogue, rows: app.rows, gb });
      run.dump_bytes = run.stored.bytes;
      Object.assign(run, logFigures(lifeline));
      out.runs.push(run);
      print(`${label}: job ${i + 1}/${of}: whole job ${seconds(run.job_ms)}, dump step ${seconds(run.dump_step_ms)}`);
    } finally {
      await stop();
      // The next job starts from an empty store, as this one did.
      for (const file of readdirSync(store.dir)) rmSync(join(store.dir, file), { force: true });
    }
  };

  try {
    await runInTurns({ label, runs: RUNS, withBaseline, timeBaseline, timeJob });
    Object.assign(
      out,
      medianRun(out.runs, [
        'job_ms',
        'dump_step_ms',
        'check_step_ms',
        'retention_step_ms',
        'command_ack_ms',
        'command_to_plan_ms',
        'command_to_first_step_ms',
        'command_to_dump_done_ms',
      ]),
    );
    // What the printed round shows of the stored backup: the median job's.
    out.stored = out.runs.find((r) => r.steps === out.steps)?.stored;
    out.dump_bytes = out.stored?.bytes;
    if (withBaseline) out.baseline = spreadOf(out.baseline_runs_ms);
    out.baseline_ms = out.baseline?.median;
  } finally {
    // Free the disk before the next (bigger) round.
    await base.remove();
    await work.remove();
    await store.remove();
    await app.drop();
  }
  return out;
}

// ---- the benchmark -------------------------------------------------------------------------------------------------

function printRound(print, r) {
  print(
    `${r.label}: database ${megabytes(r.database_bytes)} (${r.rows} rows), Lifeline's backup ${r.stored.name} ${megabytes(r.dump_bytes)}`,
  );
  print(
    `${r.label}: command → "JOB succeeded" message ${withSpread(r.job_ms, r.spread.job_ms)}; dump step ${withSpread(r.dump_step_ms, r.spread.dump_step_ms)} (ack ${r.command_ack_ms} ms, command → plan ${r.command_to_plan_ms} ms, ` +
      `command → first step ${r.command_to_first_step_ms} ms, command → dump step done ${seconds(r.command_to_dump_done_ms)})`,
  );
  print(`${r.label}: steps of the median job:`);
  printSteps(print, r, (s) => (s.name === STEP_DUMP && s.detail ? String(s.detail).slice(0, 300) : undefined));
  const st = r.stored;
  print(
    `${r.label}: stored backup checked: pg_restore --list ${st.pg_restore_list_entries} entries (${st.pg_restore_list_ms} ms), SHA-256 = sidecar = catalogue ` +
      `(read in ${st.sha256_read_ms} ms), catalogue rows ${JSON.stringify(st.catalogue_table_rows)}; fsync after the job ${st.fsync_after_job_ms} ms`,
  );
  if (r.baseline_ms !== undefined)
    print(
      `${r.label}: baseline pg_dump -Fc ${megabytes(r.baseline_dump_bytes)}, pg_dump peak ${r.baseline_pg_dump_peak_mb} MB RSS`,
    );
  printMemoryAndLog(print, r);
}

export async function run(print) {
  stopper.arm();
  // At 2x: the database, its WAL, a baseline dump and Lifeline's dump; with margin.
  const { first, second } = await twoRounds({
    sizeMb: SIZE_MB,
    diskFactor: 5,
    doubleBaseline: DOUBLE_BASELINE,
    measure,
    printRound,
    print,
  });

  const jobRatio = ratio(first.job_ms, first.baseline_ms);
  const stepRatio = ratio(first.dump_step_ms, first.baseline_ms);
  const dumpDoneRatio = ratio(first.command_to_dump_done_ms, first.baseline_ms);
  const jobOk = jobRatio !== null && jobRatio <= TARGET_RATIO;

  print(
    `baseline pg_dump -Fc to a file: ${withSpread(first.baseline_ms, first.baseline)}; ` +
      `Lifeline dump step ${seconds(first.dump_step_ms)}, check step ${seconds(first.check_step_ms)}, retention ${seconds(first.retention_step_ms)}; whole job ${seconds(first.job_ms)}`,
  );
  print(
    `ratio whole job (command → result message) / baseline = ${jobRatio}; ratio dump step / baseline = ${stepRatio} (command → dump step done: ${dumpDoneRatio})`,
  );
  if (second.baseline_ms !== undefined)
    print(
      `2x: baseline ${seconds(second.baseline_ms)}, dump step ${seconds(second.dump_step_ms)} (${ratio(second.dump_step_ms, second.baseline_ms)}x), job ${seconds(second.job_ms)} (${ratio(second.job_ms, second.baseline_ms)}x)`,
    );
  const memory = memoryVerdicts(print, first, second, 'database');
  print(
    `${verdict(jobOk)} whole job, command → result message, <= ${TARGET_RATIO} x pg_dump -Fc, medians of ${RUNS} runs each (${jobRatio}x)`,
  );
  print(`(not a target) dump step alone: ${stepRatio}x`);
  memory.printVerdicts();

  return {
    headline: `job ${jobRatio}x and dump step ${stepRatio}x vs pg_dump -Fc (${seconds(first.job_ms)}, ${seconds(first.dump_step_ms)} vs ${seconds(first.baseline_ms)}); peak RSS ${memory.peak1} → ${memory.peak2} MB`,
    size_mb: SIZE_MB,
    ratio_job: jobRatio,
    ratio_dump_step: stepRatio,
    ratio_command_to_dump_done: dumpDoneRatio,
    ratio_peak_rss_2x_over_1x: memory.flatRatio,
    rounds: [first, second].map((r) => ({
      ...r,
      steps: r.steps.map(({ name: n, ms, state: st, cpu }) => ({ name: n, ms, state: st, cpu })),
      runs: r.runs.map(({ steps: _steps, ...rest }) => rest),
    })),
    targets: {
      whole_job_at_most_1_1x: verdict(jobOk),
      peak_rss_under_200mb: verdict(memory.memoryOk),
      peak_rss_flat_when_doubled: verdict(memory.flatOk),
    },
    pass: jobOk && memory.memoryOk && memory.flatOk,
  };
}
