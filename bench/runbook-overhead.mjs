// Runbook engine overhead: a runbook of 20 no-op steps (`notify` to the fake Slack) run by the real process (node
// dist/main.js), from the approval click to the run's end, minus the sum of the step bodies (each step's start to end
// as Lifeline records them: the kind's run and check, its recorded change included), per step. Baseline, in the same run: the same 20 chat.postMessage calls made directly to the fake Slack, one
// after another. Target: under 50 ms of engine overhead per step at p99 over the runs; a run that does not end
// fails the benchmark.
import { performance } from 'node:perf_hooks';
import { onCleanup } from './support/cleanup.mjs';
import { startFakes } from './support/fakes.mjs';
import { openPool } from './support/infra.mjs';
import { CHANNEL, startOwnLifeline } from './support/processes.mjs';
import { BOT_TOKEN, buttonBody, commandBody, postSigned } from './support/slack-requests.mjs';
import { ratio, round, summary, verdict } from './support/stats.mjs';

export const name = 'runbook-overhead';
export const timeLimitMs = 240_000;

const STEPS = 20;
const RUNS = Number(process.env.BENCH_RUNBOOK_RUNS ?? 6);
const TARGET_PER_STEP_MS = 50;
const RUN_LIMIT_MS = 60_000;

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

async function waitFor(what, check, limitMs = RUN_LIMIT_MS) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One run: requested, approved by a click, waited for; its figures from Lifeline's own records. */
async function measuredRun(lifeline, slack, pool) {
  const before = (await pool.query('SELECT coalesce(max(number), 0) AS n FROM runbook_runs')).rows[0].n;
  const sent = await postSigned(
    lifeline.eventsUrl,
    commandBody({
      command: '/dr',
      text: 'run noop',
      user_id: 'U0LEAD',
      channel_id: CHANNEL,
      response_url: slack.newResponseUrl(),
    }),
  );
  if (sent.status !== 200) throw new Error(`/dr run answered HTTP ${sent.status}`);
  const run = await waitFor('the run message', async () => {
    const { rows } = await pool.query(
      `SELECT number, progress_ts FROM runbook_runs WHERE number > $1 AND state = 'awaiting_approval' AND progress_ts IS NOT NULL`,
      [before],
    );
    return rows[0];
  });
  const click = await postSigned(
    lifeline.eventsUrl,
    buttonBody({
      action_id: 'run_approve',
      value: String(run.number),
      block_id: `run_${run.number}`,
      label: 'Approve',
      user_id: 'U0CTO',
      channel_id: CHANNEL,
      message_ts: run.progress_ts,
      response_url: slack.newResponseUrl(),
    }),
  );
  if (click.status !== 200) throw new Error(`Approve answered HTTP ${click.status}`);
  const ended = await waitFor(`RUN-${run.number} to end`, async () => {
    const { rows } = await pool.query(
      `SELECT state, approvals, finished_at FROM runbook_runs WHERE number = $1 AND finished_at IS NOT NULL`,
      [run.number],
    );
    return rows[0];
  });
  if (ended.state !== 'succeeded') throw new Error(`RUN-${run.number} ended ${ended.state}`);
  const { rows: steps } = await pool.query(
    `SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms FROM runbook_steps WHERE run = $1`,
    [run.number],
  );
  const totalMs = ended.finished_at.getTime() - Date.parse(ended.approvals[0].at);
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
    headline: `engine overhead p99 ${perStep.p99} ms/step over ${RUNS} runs of ${STEPS} steps; approval to end p99 ${totals.p99} ms vs ${base.p99} ms for the ${STEPS} posts alone`,
    per_step_ms: perStep,
    total_ms: totals,
    baseline_ms: base,
    ratio_p99: ratio(totals.p99, base.p99),
    targets: { [`engine overhead p99 < ${TARGET_PER_STEP_MS} ms per step`]: verdict(pass) },
  };
}
