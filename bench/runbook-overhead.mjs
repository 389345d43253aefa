// Runbook engine overhead: a runbook of 20 no-op steps (`notify` to the fake Slack) run by the real process (node
// dist/main.js), from the approval (the Approve click's HTTP answer) to the report (the run's "succeeded" post at the
// fake Slack), minus the sum of the step bodies (each step's start to end as Lifeline records them: the kind's run and
// check, its recorded change included), per step. Baseline, in the same run: the same 20 chat.postMessage calls made
// directly to the fake Slack, one after another. Target: under 50 ms of engine overhead per step at p99 over the runs; a run that does not end
// fails the benchmark.
import { performance } from 'node:perf_hooks';
import { onCleanup } from './support/cleanup.mjs';
import { startFakes } from './support/fakes.mjs';
import { openPool } from './support/infra.mjs';
import { CHANNEL, startOwnLifeline } from './support/processes.mjs';
import { approvedRun } from './support/runbook-runs.mjs';
import { BOT_TOKEN } from './support/slack-requests.mjs';
import { ratio, round, summary, verdict } from './support/stats.mjs';

export const name = 'runbook-overhead';
export const timeLimitMs = 240_000;

const STEPS = 20;
const RUNS = Number(process.env.BENCH_RUNBOOK_RUNS ?? 6);
const TARGET_PER_STEP_MS = 50;

function runbookYaml() {
  const steps = Array.from(
    { length: STEPS },
    (_, i) => `      - notify: { channel: ${CHANNEL}, text: "no-op step ${i + 1}" }`,
  );
  return `runbooks:
  noop:
    title: Twenty no-op steps
    steps:
${steps.join('\n')}
`;
}

/** One run: requested, approved by a click, its report awaited; the step bodies from Lifeline's own step records. */
async function measuredRun(lifeline, slack, pool) {
  const run = await approvedRun({ lifeline, slack, pool, runbook: 'noop' });
  const { rows: steps } = await pool.query(
    `SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms FROM runbook_steps WHERE run = $1`,
    [run.number],
  );
  const totalMs = run.reportAt - run.approvedAt;
  const bodiesMs = steps.reduce((sum, s) => sum + Number(s.ms), 0);
  return { totalMs, bodiesMs, perStepMs: (totalMs - bodiesMs) / STEPS };
}

/** The step bodies alone: 20 chat.postMessage calls straight to the fake Slack, one after another. */
async function baselineMs(slack) {
  const started = performance.now();
  for (let i = 0; i < STEPS; i++) {
    const res = await fetch(`${slack.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BOT_TOKEN}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ channel: CHANNEL, text: `baseline ${i + 1}` }),
    });
    await res.text();
  }
  return performance.now() - started;
}

export async function run(print) {
  const { slack, pagerduty } = await startFakes();
  const { db, lifeline } = await startOwnLifeline({
    tag: 'runbook',
    steps: [{ after_minutes: 0, notify: 'oncall' }],
    slack,
    pagerduty,
    configOptions: { extraYaml: runbookYaml() },
  });
  const pool = openPool(db.url);
  onCleanup('close the runbook benchmark pool', () => pool.end());
  // A warm-up run on the fresh process, printed, not counted.
  const warm = await measuredRun(lifeline, slack, pool);
  print(`warm-up: ${round(warm.totalMs)} ms, engine ${round(warm.perStepMs)} ms/step`);
  const runs = [];
  const baselines = [];
  for (let i = 0; i < RUNS; i++) {
    baselines.push(await baselineMs(slack));
    const measured = await measuredRun(lifeline, slack, pool);
    runs.push(measured);
    print(
      `run ${i + 1}: ${round(measured.totalMs)} ms (bodies ${round(measured.bodiesMs)} ms), engine ${round(measured.perStepMs)} ms/step`,
    );
  }
  const perStep = summary(runs.map((r) => r.perStepMs));
  const totals = summary(runs.map((r) => r.totalMs));
  const base = summary(baselines);
  const pass = runs.length === RUNS && perStep.p99 !== null && perStep.p99 < TARGET_PER_STEP_MS;
  return {
    pass,
    headline: `engine overhead p99 ${perStep.p99} ms/step over ${RUNS} runs of ${STEPS} steps; approval to report p99 ${totals.p99} ms vs ${base.p99} ms for the ${STEPS} posts alone`,
    per_step_ms: perStep,
    total_ms: totals,
    baseline_ms: base,
    ratio_p99: ratio(totals.p99, base.p99),
    targets: { [`engine overhead p99 < ${TARGET_PER_STEP_MS} ms per step`]: verdict(pass) },
  };
}
