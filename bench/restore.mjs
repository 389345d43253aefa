// Restore: Lifeline's /dr restore job on a generated application database of about BENCH_RESTORE_MB (default 1 GB)
// of incompressible text (base64 of random bytes), against a plain `pg_restore -j 2 --no-owner --no-privileges` of
// the same custom-format dump into a fresh database. At least 3 runs of each side, in turns, each job in a fresh
// Lifeline process; the verdicts compare medians and the spread is printed. Timed from the approval click to the
// job's result message ("JOB-n succeeded"), and the restore step alone (from recovery_steps), since the job also
// takes a safety backup. Memory: the Lifeline process's VmRSS sampled every 100 ms during the job
// (and VmHWM, reset at approval), its child processes (pg_dump, pg_restore) summed separately; then a database twice
// the size is generated and the job runs again in a fresh Lifeline process, to see that the peak stays flat.
// Also per step: Lifeline's CPU, the machine's CPU and iowait, and the kernel's dirty page cache (2 CPUs here).
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { onCleanup } from './support/cleanup.mjs';
import { jobBenchLimitMs, jobSteps, logFigures, startJobLifeline, TOOL_LIMIT_MS } from './support/job-run.mjs';
import { MemorySampler } from './support/memory.mjs';
import {
  admin,
  APP_TABLES as TABLES,
  backupName as backupNameOf,
  checkpoint,
  createAppDatabase as createGeneratedDatabase,
  databaseSize,
  rowCount,
  urlOf,
} from './support/pgbench-data.mjs';
import { CHANNEL } from './support/processes.mjs';
import { medianRun, memoryVerdicts, printMemoryAndLog, printSteps, runInTurns, twoRounds } from './support/rounds.mjs';
import { approveButtonOf, blocksOf, lastWords } from './support/slack-posts.mjs';
import { buttonBody, commandBody, postSigned } from './support/slack-requests.mjs';
import { megabytes, ratio, seconds, spreadOf, verdict, withSpread } from './support/stats.mjs';
import {
  fsyncFile,
  runProgram as runTool,
  stopSwitch,
  tempFolder as newTempFolder,
  waitFor as pollFor,
} from './support/tools.mjs';

export const name = 'restore';

const SIZE_MB = Number(process.env.BENCH_RESTORE_MB ?? 1024);
/** 0 = no baseline at the doubled size (saves about a minute per GB); the targets are judged at 1x. */
const DOUBLE_BASELINE = process.env.BENCH_RESTORE_DOUBLE_BASELINE !== '0';
/** Runs of each side at 1x (baselines and jobs, in turns); the verdicts compare their medians. */
const RUNS = Math.max(3, Number(process.env.BENCH_RESTORE_RUNS ?? 3));
const PARALLEL = 2;
const TARGET_RATIO = 1.1;
const GB = SIZE_MB / 1024;
/**
 * Everything scales with the data: generation, the dump, RUNS baselines and jobs at 1x, then baselines and a job at 2x.
 */
export const timeLimitMs = jobBenchLimitMs(RUNS, GB);

const ENV = 'benchdb';
const PREFIX = 'benchapp';
const REQUESTER = 'U0ONCALL'; // a responder: only responders may request a job
const APPROVER = 'U0LEAD';
const STEP_RESTORE = 'restore into a fresh database';

/** Flipped by the first cleanup: a benchmark that ran out of time must not create anything after its cleanup ran. */
const stopper = stopSwitch('restore');
const alive = () => stopper.alive();

// The shared helpers (bench/support/), bound to this benchmark's stop switch and names.
const createAppDatabase = (sizeMb, print) => createGeneratedDatabase(sizeMb, print, { label: 'rst', alive });
const runProgram = (command, args, options = {}) => runTool(command, args, { ...options, alive });
const tempFolder = (label) => newTempFolder(label, { alive });
const waitFor = (what, probe, limitMs, everyMs = 100) => pollFor(what, probe, limitMs, { everyMs, alive });
const backupName = (at) => backupNameOf(PREFIX, at);

// ---- one measured restore ------------------------------------------------------------------------------------------

/**
 * Generates the database and dumps it into a store folder, then times baselines and Lifeline's job in turns
 * (B,J,J,B,B,J,..): `baselineRuns` plain restores and `jobRuns` jobs, each job in a fresh Lifeline process with its own
 * state database. Figures are the median of the runs; memory is the run with the highest peak. Everything it creates
 * is removed before it returns.
 */
async function measure({ sizeMb, label, withBaseline, slack, pagerduty, print }) {
  const gb = sizeMb / 1024;
  const app = await createAppDatabase(sizeMb, print);
  const store = tempFolder('store');
  const work = tempFolder('work');
  const out = { label, requested_mb: sizeMb, rows: app.rows, database_bytes: app.size, baseline_runs_ms: [], runs: [] };

  // The backup Lifeline restores: pg_dump -Fc (default compression), named as the README says.
  const backup = backupName(new Date(Date.now() - 60_000));
  const dumpPath = join(store.dir, backup);
  const dumped = await runProgram('pg_dump', ['--format=custom', '--no-owner', `--file=${dumpPath}`, app.url], {
    limitMs: TOOL_LIMIT_MS(gb),
  });
  fsyncFile(dumpPath);
  out.dump_bytes = statSync(dumpPath).size;
  out.dump_ms = Math.round(dumped.ms);
  print(
    `${label}: pg_dump -Fc ${megabytes(app.size)} → ${backup} ${megabytes(out.dump_bytes)} in ${seconds(dumped.ms)}`,
  );

  /** One baseline: CHECKPOINT, then timed CREATE DATABASE + pg_restore -j 2 of the same dump; checked, dropped. */
  const timeBaseline = async (i, of) => {
    await checkpoint();
    alive();
    const base = `lifeline_bench_rstbase_${process.pid}_${randomBytes(3).toString('hex')}`;
    // Timed from CREATE DATABASE, as Lifeline's restore step also creates its fresh database.
    const startedAt = Date.now();
    const t0 = performance.now();
    await admin(`CREATE DATABASE ${base}`);
    const createMs = performance.now() - t0;
    const dropBase = onCleanup(`drop database ${base}`, () => admin(`DROP DATABASE IF EXISTS ${base} WITH (FORCE)`));
    let sampler;
    try {
      const restored = await runProgram(
        'pg_restore',
        [`--jobs=${PARALLEL}`, '--no-owner', '--no-privileges', `--dbname=${urlOf(base)}`, dumpPath],
        {
          limitMs: TOOL_LIMIT_MS(gb),
          onStart: (pid) => (sampler = new MemorySampler(pid, { rootIsChild: true })),
        },
      );
      const memory = sampler?.stop();
      const cpu = sampler?.window(startedAt, Date.now());
      const ms = createMs + restored.ms;
      out.baseline_runs_ms.push(Math.round(ms));
      (out.baseline_cpu ??= []).push(cpu);
      out.baseline_pg_restore_peak_mb = Math.max(out.baseline_pg_restore_peak_mb ?? 0, memory?.children_peak_mb ?? 0);
      const count = await rowCount(base);
      if (count !== app.rows) throw new Error(`the baseline restore holds ${count} rows, not ${app.rows}`);
      out.baseline_database_bytes = await databaseSize(base);
      print(
        `${label}: baseline ${i + 1}/${of} CREATE DATABASE + pg_restore -j ${PARALLEL} --no-owner --no-privileges: ${seconds(ms)} ` +
          `(CREATE DATABASE ${Math.round(createMs)} ms; ` +
          `pg_restore processes peak ${memory?.children_peak_mb} MB RSS; machine CPU busy ${cpu?.machine_busy_pct}%, iowait ${cpu?.machine_iowait_pct}%, ` +
          `dirty page cache ${cpu?.dirty_at_start_mb} MB at start, peak ${cpu?.dirty_peak_mb} MB)`,
      );
    } finally {
      sampler?.stop();
      await dropBase();
    }
  };

  /** One job, approval to result, in a fresh Lifeline process; the store is left holding only `backup` again. */
  const timeJob = async (i, of) => {
    const { lifeline, pool, stop, sampled } = await startJobLifeline({
      tag: `rst${label}`,
      env: ENV,
      prefix: PREFIX,
      appUrl: app.url,
      verifyTable: TABLES[0],
      storeDir: store.dir,
      workDir: work.dir,
      slack,
      pagerduty,
      alive,
      extraYaml: '\n    require_approval: [restore]',
      extraEnv: { LIFELINE_RESTORE_JOBS: String(PARALLEL) },
      gb,
      hwmCovers: 'the job (reset at approval)',
    });
    const run = {};
    try {
      const postsBefore = slack.posts.length;
      const sent = await postSigned(
        lifeline.eventsUrl,
        commandBody({
          command: '/dr',
          text: `restore ${ENV} latest`,
          user_id: REQUESTER,
          channel_id: CHANNEL,
          response_url: slack.newResponseUrl(),
        }),
      );
      if (sent.status !== 200) throw new Error(`/dr restore answered ${sent.status} ${sent.error ?? ''}`);
      const plan = await waitFor(
        'the plan with Approve/Reject',
        () =>
          slack.posts
            .slice(postsBefore)
            .find((p) => p.channel === CHANNEL && p.thread_ts === undefined && approveButtonOf(p)),
        30_000,
      ).catch((err) => {
        throw new Error(`${err.message}${lastWords(slack, lifeline)}`);
      });
      const button = approveButtonOf(plan);
      const job = Number(button.value);
      if (!JSON.stringify(blocksOf(plan)).includes(backup))
        throw new Error(
          `the plan of JOB-${job} does not name ${backup}: ${JSON.stringify(blocksOf(plan)).slice(0, 1000)}`,
        );

      const { result, startedAt, sampler, memory } = await sampled(postsBefore, async () => {
        const click = await postSigned(
          lifeline.eventsUrl,
          buttonBody({
            action_id: 'job_approve',
            value: button.value,
            block_id: button.blockId,
            label: 'Approve',
            user_id: APPROVER,
            channel_id: CHANNEL,
            message_ts: plan.ts,
            response_url: slack.newResponseUrl(),
          }),
        );
        if (click.status !== 200) throw new Error(`the Approve click answered ${click.status} ${click.error ?? ''}`);
        return job;
      });

      run.job_ms = result.at - startedAt;
      const { rows: steps, steps: measured } = await jobSteps(pool, job, sampler);
      run.steps = measured;
      const restoreStep = run.steps.find((s) => s.name === STEP_RESTORE);
      run.restore_step_ms = restoreStep?.ms ?? null;
      const inner = /with pg_restore -j \d+ in ([\d.]+) s/.exec(restoreStep?.detail ?? '');
      run.restore_step_pg_restore_ms = inner ? Math.round(Number(inner[1]) * 1000) : null;
      // ANALYZE is its own step after verify.
      run.restore_step_analyze_ms = run.steps.find((s) => /ANALYZE/.test(s.name))?.ms ?? null;
      run.approval_to_first_step_ms = steps.length > 0 ? Math.round(Number(steps[0].started) - startedAt) : null;
      const verifyStep = steps.find((st) => st.name === 'verify');
      run.approval_to_verified_ms = verifyStep
        ? Math.round(Number(verifyStep.started) + Number(verifyStep.ms) - startedAt)
        : null;
      run.memory = memory;
      run.result_says = result.text.slice(0, 200);
      run.restored_rows = await rowCount(app.dbName);
      if (run.restored_rows !== app.rows)
        throw new Error(`after JOB-${job} the database holds ${run.restored_rows} rows, not ${app.rows}`);
      Object.assign(run, logFigures(lifeline));
      out.runs.push(run);
      print(
        `${label}: job ${i + 1}/${of}: approval → verified ${seconds(run.approval_to_verified_ms)}, restore step ${seconds(run.restore_step_ms)}, whole job ${seconds(run.job_ms)}`,
      );
    } finally {
      await stop();
      // The next run restores the same backup as "latest": the safety copy this job took goes.
      for (const file of readdirSync(store.dir)) if (file !== backup) rmSync(join(store.dir, file), { force: true });
    }
  };

  try {
    await runInTurns({ label, runs: RUNS, withBaseline, timeBaseline, timeJob });
    Object.assign(
      out,
      medianRun(out.runs, [
        'job_ms',
        'restore_step_ms',
        'restore_step_pg_restore_ms',
        'restore_step_analyze_ms',
        'approval_to_first_step_ms',
        'approval_to_verified_ms',
      ]),
    );
    if (withBaseline) out.baseline = spreadOf(out.baseline_runs_ms);
    out.baseline_ms = out.baseline?.median;
  } finally {
    // Free the disk before the next (bigger) round.
    await work.remove();
    await store.remove();
    await app.drop();
  }
  return out;
}

// ---- the benchmark -------------------------------------------------------------------------------------------------

function printRound(print, r) {
  print(`${r.label}: database ${megabytes(r.database_bytes)} (${r.rows} rows), dump ${megabytes(r.dump_bytes)}`);
  print(
    `${r.label}: approval → "JOB succeeded" message ${withSpread(r.job_ms, r.spread.job_ms)}; approval → first step ${r.approval_to_first_step_ms} ms; ` +
      `approval → verify step done ${withSpread(r.approval_to_verified_ms, r.spread.approval_to_verified_ms)}; restore step ${withSpread(r.restore_step_ms, r.spread.restore_step_ms)}`,
  );
  print(`${r.label}: steps of the median job:`);
  printSteps(print, r);
  if (r.restore_step_pg_restore_ms !== null) {
    print(
      `${r.label}:   inside the restore step: pg_restore ${seconds(r.restore_step_pg_restore_ms)}; ANALYZE (after verify) ${seconds(r.restore_step_analyze_ms)}`,
    );
  }
  printMemoryAndLog(print, r);
}

export async function run(print) {
  stopper.arm();
  // At 2x: source, fresh copy, dump, downloaded copy, safety copy, WAL; with margin.
  const { first, second } = await twoRounds({
    sizeMb: SIZE_MB,
    diskFactor: 7,
    doubleBaseline: DOUBLE_BASELINE,
    measure,
    printRound,
    print,
  });

  const jobRatio = ratio(first.job_ms, first.baseline_ms);
  const stepRatio = ratio(first.restore_step_ms, first.baseline_ms);
  const pgRestoreRatio = ratio(first.restore_step_pg_restore_ms, first.baseline_ms);
  const verifiedRatio = ratio(first.approval_to_verified_ms, first.baseline_ms);
  const verifiedOk = verifiedRatio !== null && verifiedRatio <= TARGET_RATIO;
  const stepOk = stepRatio !== null && stepRatio <= TARGET_RATIO;

  print(
    `baseline CREATE DATABASE + pg_restore -j ${PARALLEL}: ${withSpread(first.baseline_ms, first.baseline)}; Lifeline restore step ${seconds(first.restore_step_ms)} (its pg_restore ${seconds(first.restore_step_pg_restore_ms)}; ANALYZE after verify ${seconds(first.restore_step_analyze_ms)}); whole job ${seconds(first.job_ms)}`,
  );
  print(
    `ratio restore step / baseline = ${stepRatio} (its pg_restore alone ${pgRestoreRatio}); ratio whole job (approval → result message) / baseline = ${jobRatio} ` +
      `(approval → verify step done: ${verifiedRatio})`,
  );
  if (second.baseline_ms !== undefined)
    print(
      `2x: baseline ${seconds(second.baseline_ms)}, restore step ${seconds(second.restore_step_ms)} (${ratio(second.restore_step_ms, second.baseline_ms)}x), job ${seconds(second.job_ms)} (${ratio(second.job_ms, second.baseline_ms)}x)`,
    );
  const memory = memoryVerdicts(print, first, second, 'dump');
  print(
    `${verdict(stepOk)} restore step <= ${TARGET_RATIO} x pg_restore -j ${PARALLEL}, medians of ${RUNS} runs each (${stepRatio}x)`,
  );
  print(
    `${verdict(verifiedOk)} approval → verified <= ${TARGET_RATIO} x pg_restore -j ${PARALLEL}, medians of ${RUNS} runs each (${verifiedRatio}x)`,
  );
  print(`(not a target) whole job up to its result message, safety copy included: ${jobRatio}x`);
  memory.printVerdicts();

  return {
    headline: `approval → verified ${verifiedRatio}x and restore step ${stepRatio}x vs pg_restore -j ${PARALLEL} (${seconds(first.approval_to_verified_ms)}, ${seconds(first.restore_step_ms)} vs ${seconds(first.baseline_ms)}); peak RSS ${memory.peak1} → ${memory.peak2} MB`,
    size_mb: SIZE_MB,
    parallel_jobs: PARALLEL,
    ratio_job: jobRatio,
    ratio_restore_step: stepRatio,
    ratio_restore_step_pg_restore: pgRestoreRatio,
    ratio_approval_to_verified: verifiedRatio,
    ratio_peak_rss_2x_over_1x: memory.flatRatio,
    rounds: [first, second].map((r) => ({
      ...r,
      steps: r.steps.map(({ name: n, ms, state: st, cpu }) => ({ name: n, ms, state: st, cpu })),
      runs: r.runs.map(({ steps: _steps, ...rest }) => rest),
    })),
    targets: {
      restore_step_at_most_1_1x: verdict(stepOk),
      approval_to_verified_at_most_1_1x: verdict(verifiedOk),
      peak_rss_under_200mb: verdict(memory.memoryOk),
      peak_rss_flat_when_doubled: verdict(memory.flatOk),
    },
    pass: stepOk && verifiedOk && memory.memoryOk && memory.flatOk,
  };
}
