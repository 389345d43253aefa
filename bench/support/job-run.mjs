// One measured recovery job (backup, restore) in a fresh Lifeline process: the setup, the wait for its result and
// its timed steps, the same for every benchmark that compares a job with the PostgreSQL tool it wraps.
import { pathToFileURL } from 'node:url';
import { onCleanup } from './cleanup.mjs';
import { openPool } from './infra.mjs';
import { kbToMb, MemorySampler, resetPeak, statusKb } from './memory.mjs';
import { checkpoint } from './pgbench-data.mjs';
import { startOwnLifeline } from './processes.mjs';
import { lastWords } from './slack-posts.mjs';
import { stepText, waitFor } from './tools.mjs';

/** How long a job benchmark may take: generating the data, RUNS baselines and jobs at 1x, then 2x. */
export function jobBenchLimitMs(runs, gb) {
  return Math.round((4 + (12 + 6 * runs) * Math.max(gb, 0.05)) * 60_000);
}
/** How long one job may take at `gb` GB of data, and one run of a PostgreSQL tool. */
const JOB_LIMIT_MS = (gb) => Math.round((2 + 8 * gb) * 60_000);
export const TOOL_LIMIT_MS = (gb) => Math.round((2 + 6 * gb) * 60_000);

/**
 * Lifeline with its own state database and queue prefix and a config naming the app database (verified by a count
 * of `verifyTable`) and the store folder; drills off, so that nothing but the request starts a job. TMPDIR is
 * `workDir`; AWS points at a closed local port, as no AWS call is expected. `stop` undoes it all. `alive` throws once
 * the benchmark's cleanup ran, so that no process starts after it. `sampled(postsBefore, start)` measures one job on
 * it (see sampledJob; `hwmCovers` says when VmHWM was reset), limited to JOB_LIMIT_MS at `gb` GB of data.
 */
export async function startJobLifeline({
  tag,
  env,
  prefix,
  appUrl,
  verifyTable,
  storeDir,
  workDir,
  slack,
  pagerduty,
  extraYaml = '',
  extraEnv = {},
  gb,
  hwmCovers,
  alive,
}) {
  const { db, queue, lifeline } = await startOwnLifeline({
    tag,
    steps: [{ after_minutes: 0, notify: 'oncall' }],
    slack,
    pagerduty,
    configOptions: {
      environmentsYaml: `  ${env}:
    database:
      url: "${appUrl}"
      verify: [SELECT COUNT(*) FROM ${verifyTable}]
    backups: { store: "${pathToFileURL(storeDir).href}", prefix: ${prefix}, retention_days: 7, rpo_minutes: 1440, drill_schedule: "off" }${extraYaml}`,
    },
    beforeStart: alive,
    extraEnv: {
      TMPDIR: workDir,
      ...extraEnv,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIABENCH0000000000',
      AWS_SECRET_ACCESS_KEY: 'bench-secret-key-0000000000000',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
  const pool = openPool(db.url);
  const closePool = onCleanup('close Lifeline state pool', () => pool.end());
  const stop = async () => {
    await lifeline.stop();
    await closePool();
    await queue.drop();
    await db.drop();
  };
  const sampled = (postsBefore, start) =>
    sampledJob({ slack, lifeline, postsBefore, limitMs: JOB_LIMIT_MS(gb), alive, hwmCovers, start });
  return { lifeline, pool, stop, sampled };
}

/** What a Lifeline process's log said: how many warnings and errors, and the first problems. */
export function logFigures(lifeline) {
  return {
    log_warnings: lifeline.warnings,
    log_errors: lifeline.errors,
    first_log_problems: lifeline.firstProblems,
  };
}

/** JOB-n's result message among the posts since `postsBefore` (job numbers start at 1 in each state database). */
export function jobResult({ slack, lifeline, postsBefore, job, limitMs, alive }) {
  const resultRe = new RegExp(`^JOB-${job} (succeeded|failed)\\b`);
  return waitFor(
    `JOB-${job}'s result`,
    () => slack.posts.slice(postsBefore).find((p) => p.thread_ts !== undefined && resultRe.test(p.text)),
    limitMs,
    { everyMs: 50, alive },
  ).catch((err) => {
    throw new Error(`${err.message}${lastWords(slack, lifeline)}`);
  });
}

/**
 * One job from the same starting point as a baseline (dirty buffers flushed, Lifeline idle): `start()` sends what
 * sets it going and returns its number, then its result is awaited. Lifeline's memory is sampled meanwhile (VmHWM
 * reset before; `hwmCovers` says when, if the reset worked). Throws unless the job succeeded. `startedAt` is the
 * moment just before `start()`.
 */
export async function sampledJob({ slack, lifeline, postsBefore, limitMs, alive, hwmCovers, start }) {
  await checkpoint();
  const hwmReset = resetPeak(lifeline.child.pid);
  const rssIdleKb = statusKb(lifeline.child.pid, 'VmRSS');
  const sampler = new MemorySampler(lifeline.child.pid);
  const startedAt = Date.now();
  let job;
  let result;
  let memory;
  try {
    job = await start();
    result = await jobResult({ slack, lifeline, postsBefore, job, limitMs, alive });
  } finally {
    memory = sampler.stop();
  }
  const hwmKb = statusKb(lifeline.child.pid, 'VmHWM');
  if (!result.text.startsWith(`JOB-${job} succeeded`))
    throw new Error(`JOB-${job} did not succeed: ${result.text.slice(0, 1500)}${lastWords(slack, lifeline)}`);
  return {
    job,
    result,
    startedAt,
    sampler,
    memory: {
      ...memory,
      rss_idle_before_mb: kbToMb(rssIdleKb),
      vm_hwm_mb: kbToMb(hwmKb),
      vm_hwm_covers: hwmReset ? hwmCovers : 'the whole process',
    },
  };
}

/**
 * JOB-n's steps as recovery_steps holds them (`rows`, with `started` in epoch ms) and as the benchmark reports them
 * (`steps`), each with Lifeline's own CPU and the machine's while it ran: on 2 CPUs Lifeline's share competes with
 * the tools'.
 */
export async function jobSteps(pool, job, sampler) {
  const { rows } = await pool.query(
    `SELECT step_index, name, state, detail, extract(epoch FROM finished_at - started_at) * 1000 AS ms, extract(epoch FROM started_at) * 1000 AS started
       FROM recovery_steps WHERE job = $1 ORDER BY step_index`,
    [job],
  );
  const steps = rows.map((s) => ({
    name: s.name,
    state: s.state,
    ms: Math.round(Number(s.ms)),
    detail: stepText(s.detail),
    cpu: sampler.window(Number(s.started), Number(s.started) + Number(s.ms)),
  }));
  return { rows, steps };
}
