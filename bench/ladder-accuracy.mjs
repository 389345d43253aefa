// Ladder accuracy: 200 SEV1 incidents declared through signed slash commands, each with 4 escalation steps 1-10 s
// out; how late does each PagerDuty trigger reach the (fake) PagerDuty, and is every step paged exactly once?
// Lateness is measured against the schedule the benchmark asked for: the moment it sent the declaration plus the
// step's offset, on this process's clock (not the due_at Lifeline writes itself). A trigger before that is early,
// and fails the run. Baseline: plain setTimeout timers armed in this process at the same offsets, at the same time.
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { onCleanup } from './support/cleanup.mjs';
import { startFakes } from './support/fakes.mjs';
import { openPool } from './support/infra.mjs';
import { CHANNEL, startOwnLifeline } from './support/processes.mjs';
import { commandBody, postSigned, runPool } from './support/slack-requests.mjs';
import { ratio, summary, verdict } from './support/stats.mjs';

export const name = 'ladder-accuracy';
export const timeLimitMs = 300_000;

const INCIDENTS = Number(process.env.BENCH_LADDER_INCIDENTS ?? 200);
/** Declarations in flight at once: a burst, as fast as Lifeline acks them. */
const IN_FLIGHT = Number(process.env.BENCH_LADDER_IN_FLIGHT ?? 20);
const STEPS = [
  { after_minutes: 1 / 60, notify: 'oncall' },
  { after_minutes: 4 / 60, notify: 'engineering_lead' },
  { after_minutes: 7 / 60, notify: 'cto' },
  { after_minutes: 10 / 60, notify: 'ceo' },
];
const STEP_MS = STEPS.map((s) => Math.round(s.after_minutes * 60_000));
const TARGET_P99_MS = 1_000;
/** After the last step is due: wait at most this long for missing pages... */
const MARGIN_MS = 15_000;
/** ...and, once all have arrived, this long more to catch duplicates. */
const DUPLICATE_WATCH_MS = 3_000;

function dedupKey(incident, role) {
  return `lifeline-INC-${incident}-${role}`;
}

export async function run(print) {
  const { slack, pagerduty } = await startFakes();
  const { db, lifeline } = await startOwnLifeline({ tag: 'ladder', steps: STEPS, slack, pagerduty });
  // Lifeline logs each fired step with its lateness at the moment the worker claimed it (before paging).
  const claimLateness = new Map();
  lifeline.lineListeners.push((line) => {
    if (!line.includes('escalation step fired')) return;
    try {
      const entry = JSON.parse(line);
      const number = /^INC-(\d+)$/.exec(entry.incident ?? '')?.[1];
      if (number && typeof entry.latenessMs === 'number')
        claimLateness.set(dedupKey(Number(number), entry.role), entry.latenessMs);
    } catch {
      // not a JSON log line
    }
  });
  const pool = openPool(db.url);
  onCleanup('close result pool', () => pool.end());

  // Baseline timers: armed when each declaration is sent, at the same offsets, firing while Lifeline works.
  const baseline = [];
  const baselineTimers = new Set();
  const armBaseline = () => {
    const armedAt = performance.now();
    for (const offset of STEP_MS) {
      const due = armedAt + offset;
      const timer = setTimeout(() => {
        baselineTimers.delete(timer);
        baseline.push(performance.now() - due);
      }, offset);
      baselineTimers.add(timer);
    }
  };
  onCleanup('clear baseline timers', async () => baselineTimers.forEach((t) => clearTimeout(t)));

  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  onCleanup('close HTTP agent', async () => agent.destroy());
  const cpuStart = lifeline.cpuMs();
  const declareStarted = Date.now();
  const acks = await runPool(
    INCIDENTS,
    IN_FLIGHT,
    async (i) => {
      const responseUrl = slack.newResponseUrl();
      const body = commandBody({
        command: '/incident',
        text: `sev1 Bench: payments API down, wave ${i + 1}`,
        user_id: 'U0DECLARER',
        channel_id: CHANNEL,
        response_url: responseUrl,
      });
      armBaseline();
      const sentAt = Date.now();
      const result = await postSigned(lifeline.eventsUrl, body, { agent });
      return { ...result, sentAt, responseId: responseUrl.slice(responseUrl.lastIndexOf('/') + 1) };
    },
    60_000,
  );
  const declareMs = Date.now() - declareStarted;
  agent.destroy();
  const sent = acks.filter(Boolean);
  const ackFailures = sent.filter((r) => r.status !== 200);
  print(
    `declared: ${sent.length} sev1 commands sent, ${IN_FLIGHT} in flight, in ${declareMs} ms; ${ackFailures.length} not acked with 200${ackFailures[0] ? ` (first: ${ackFailures[0].status} ${ackFailures[0].error ?? ''})` : ''}`,
  );

  // Wait for the replies (declaration done), then until every step is due plus a margin.
  const expected = INCIDENTS * STEPS.length;
  const waitUntil = async (check, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };
  const sentIds = new Set(sent.map((r) => r.responseId));
  await waitUntil(() => slack.responses.filter((r) => sentIds.has(r.id)).length >= sent.length, 60_000);
  const declaredDone = Date.now();
  const { rows: dueRow } = await pool.query(
    'SELECT max(due_at) AS last_due, count(*)::int AS steps FROM escalation_steps',
  );
  const lastDue = dueRow[0]?.last_due
    ? new Date(dueRow[0].last_due).getTime()
    : declaredDone + STEP_MS[STEP_MS.length - 1];
  print(
    `all replies in after ${declaredDone - declareStarted} ms; ${dueRow[0]?.steps ?? 0} steps in the database, last due in ${Math.max(0, lastDue - Date.now())} ms`,
  );
  const uniqueTriggers = () => new Set(pagerduty.triggers().map((e) => e.dedup_key)).size;
  await waitUntil(
    () => Date.now() >= lastDue && uniqueTriggers() >= expected,
    Math.max(0, lastDue - Date.now()) + MARGIN_MS,
  );
  await new Promise((r) => setTimeout(r, DUPLICATE_WATCH_MS));
  const cpuEnd = lifeline.cpuMs();
  const busyWallMs = Date.now() - declareStarted;
  const cpuMs = cpuStart !== null && cpuEnd !== null ? cpuEnd - cpuStart : null;
  // Every baseline timer was due long ago; any still pending would show up as missing.
  baselineTimers.forEach((t) => clearTimeout(t));

  // Per step: due time from PostgreSQL, arrival time at the fake PagerDuty.
  const { rows: steps } = await pool.query(
    `SELECT s.incident, s.step_index, s.role, s.state, s.due_at, s.paged_at, i.severity
       FROM escalation_steps s JOIN incidents i ON i.number = s.incident ORDER BY s.incident, s.step_index`,
  );
  const { rows: incidentRows } = await pool.query('SELECT count(*)::int AS n FROM incidents');
  const byKey = new Map(steps.map((s) => [dedupKey(s.incident, s.role), s]));
  const triggersByKey = new Map();
  for (const event of pagerduty.triggers()) {
    const list = triggersByKey.get(event.dedup_key) ?? [];
    list.push(event);
    triggersByKey.set(event.dedup_key, list);
  }
  // Which incident each declaration became: its reply at the response_url names it.
  const sentAtById = new Map(sent.map((r) => [r.responseId, r.sentAt]));
  const askedAt = new Map();
  for (const r of slack.responses) {
    const number = /Declared \*INC-(\d+)\*/.exec(r.text)?.[1];
    if (number && sentAtById.has(r.id)) askedAt.set(Number(number), sentAtById.get(r.id));
  }
  let duplicates = 0;
  let unknown = 0;
  let unscheduled = 0;
  const lateness = [];
  const latenessByStep = STEPS.map(() => []);
  const dbLateness = [];
  const dueLateness = [];
  for (const [key, events] of triggersByKey) {
    duplicates += events.length - 1;
    const step = byKey.get(key);
    if (!step) {
      unknown += events.length;
      continue;
    }
    if (!askedAt.has(step.incident)) {
      unscheduled += 1;
      continue;
    }
    const late = events[0].at - (askedAt.get(step.incident) + STEP_MS[step.step_index]);
    lateness.push(late);
    latenessByStep[step.step_index]?.push(late);
    dueLateness.push(events[0].at - new Date(step.due_at).getTime());
    if (step.paged_at) dbLateness.push(new Date(step.paged_at).getTime() - new Date(step.due_at).getTime());
  }
  // Where step-1 lateness comes from: the timer is armed at the end of the declaration (after the card post), but
  // the step's due_at is fixed when its row is inserted. Reply time at the response_url ~ end of the declaration.
  const replyAt = new Map();
  for (const r of slack.responses) {
    const number = /Declared \*INC-(\d+)\*/.exec(r.text)?.[1];
    if (number && sentIds.has(r.id)) replyAt.set(Number(number), r.at);
  }
  const insertToReply = [];
  let armedAfterDue = 0;
  for (const s of steps) {
    if (s.step_index !== 0 || !replyAt.has(s.incident)) continue;
    const due = new Date(s.due_at).getTime();
    insertToReply.push(replyAt.get(s.incident) - (due - STEP_MS[0]));
    if (replyAt.get(s.incident) > due) armedAfterDue++;
  }
  const declarationStats = summary(insertToReply);

  // Split of the lateness: claim (timer delivered and step claimed by a worker) vs claim -> PagerDuty.
  const claimLate = [];
  const claimToPage = [];
  for (const [key, events] of triggersByKey) {
    const step = byKey.get(key);
    if (!step || !claimLateness.has(key)) continue;
    claimLate.push(claimLateness.get(key));
    claimToPage.push(events[0].at - new Date(step.due_at).getTime() - claimLateness.get(key));
  }
  const fireWindow = pagerduty.triggers().map((e) => e.at);
  const firstFire = Math.min(...fireWindow);
  const lastFire = Math.max(...fireWindow);

  const hit = [...triggersByKey.keys()].filter((k) => byKey.has(k)).length;
  const missing = expected - hit;
  const early = lateness.filter((l) => l < 0).length;

  const lifelineStats = summary(lateness);
  const baselineStats = summary(baseline, 2);
  const p99Ratio = ratio(lifelineStats.p99, baselineStats.p99);
  const statesCount = {};
  for (const s of steps) statesCount[s.state] = (statesCount[s.state] ?? 0) + 1;
  const onTime = lifelineStats.p99 !== null && lifelineStats.p99 < TARGET_P99_MS;
  const latenessOk = onTime && early === 0 && unscheduled === 0;
  const exactOk = duplicates === 0 && missing === 0 && unknown === 0;

  print(
    `config: ${STEPS.length} steps at +${STEP_MS.map((ms) => `${ms / 1000}s`).join(', +')} (${STEPS.map((s) => s.notify).join(', ')}); ${incidentRows[0]?.n ?? 0} incidents, ${steps.length} step rows ${JSON.stringify(statesCount)}`,
  );
  print(
    `lifeline : trigger lateness (fake PagerDuty receive - (declaration sent + offset)) ` +
      `p50 ${lifelineStats.p50} ms  p99 ${lifelineStats.p99} ms  max ${lifelineStats.max} ms  ` +
      `min ${lateness.length > 0 ? Math.min(...lateness) : null} ms over ${lifelineStats.n} triggers; ` +
      `${early} EARLY${unscheduled ? `; ${unscheduled} for incidents whose declaration reply never came` : ''}`,
  );
  const due = summary(dueLateness);
  print(`           against Lifeline's own due_at: p50 ${due.p50} ms  p99 ${due.p99} ms (not the verdict)`);
  print(
    `           per step p99: ${latenessByStep.map((l, i) => `step ${i + 1} (+${STEP_MS[i] / 1000}s) ${summary(l).p99} ms`).join(', ')}`,
  );
  print(
    `           paged_at - due_at (database): p50 ${summary(dbLateness).p50} ms  p99 ${summary(dbLateness).p99} ms  max ${summary(dbLateness).max} ms`,
  );
  print(
    `           split: due -> claimed by a worker (Lifeline's log) p50 ${summary(claimLate).p50} ms p99 ${summary(claimLate).p99} ms; claimed -> PagerDuty p50 ${summary(claimToPage).p50} ms p99 ${summary(claimToPage).p99} ms (${claimLate.length} steps)`,
  );
  print(`           ${fireWindow.length} triggers arrived over ${fireWindow.length ? lastFire - firstFire : 0} ms`);
  print(
    `           declaration: steps inserted -> reply p50 ${declarationStats.p50} ms p99 ${declarationStats.p99} ms; ${armedAfterDue} of ${insertToReply.length} declarations finished (timers armed) after their step 1 was already due`,
  );
  print(
    `baseline : setTimeout lateness p50 ${baselineStats.p50} ms  p99 ${baselineStats.p99} ms  max ${baselineStats.max} ms over ${baseline.length} timers`,
  );
  print(`ratio lifeline_p99 / baseline_p99 = ${p99Ratio}`);
  print(
    `triggers: ${pagerduty.triggers().length} received, ${hit}/${expected} steps paged, ${duplicates} duplicates, ${missing} missing, ${unknown} with unknown dedup_key; other events ${pagerduty.events.length - pagerduty.triggers().length}`,
  );
  if (cpuMs !== null) {
    print(
      `lifeline CPU: ${cpuMs} ms over ${busyWallMs} ms of declaring and escalating (${Math.round((100 * cpuMs) / busyWallMs)}% of one core), ~${Math.round((cpuMs / (INCIDENTS + pagerduty.triggers().length)) * 10) / 10} ms per declaration or fired step`,
    );
  }
  print(
    `lifeline log lines: warn ${lifeline.warnings}, error ${lifeline.errors}; Slack calls ${JSON.stringify(slack.methodCounts)}`,
  );
  for (const line of lifeline.firstProblems) print(`  lifeline log: ${line}`);
  print(
    `${verdict(latenessOk)} trigger lateness p99 < ${TARGET_P99_MS} ms after the asked schedule, none early ` +
      `(${lifelineStats.p99} ms, ${early} early)`,
  );
  print(`${verdict(exactOk)} every step paged exactly once (${duplicates} duplicates, ${missing} missing)`);

  const lifelineExit = await lifeline.stop();
  print(`lifeline exited with ${lifelineExit} after SIGTERM`);

  return {
    incidents: INCIDENTS,
    declare_in_flight: IN_FLIGHT,
    declare_ms: declareMs,
    declare_ack_failures: ackFailures.length,
    step_offsets_ms: STEP_MS,
    lateness_ms: lifelineStats,
    lateness_p99_by_step_ms: latenessByStep.map((l) => summary(l).p99),
    db_paged_lateness_ms: summary(dbLateness),
    lifeline_cpu_ms: cpuMs,
    lifeline_wall_ms: busyWallMs,
    claim_lateness_ms: summary(claimLate),
    claim_to_pagerduty_ms: summary(claimToPage),
    declaration_insert_to_reply_ms: declarationStats,
    declarations_finished_after_step1_due: armedAfterDue,
    baseline_lateness_ms: baselineStats,
    ratio_p99: p99Ratio,
    expected_triggers: expected,
    triggers_received: pagerduty.triggers().length,
    duplicates,
    missing,
    unknown_keys: unknown,
    early_triggers: early,
    triggers_without_declaration_reply: unscheduled,
    lateness_vs_due_at_ms: due,
    step_states: statesCount,
    log_warnings: lifeline.warnings,
    log_errors: lifeline.errors,
    lifeline_exit_code: lifelineExit,
    targets: { lateness_p99_under_1s_none_early: verdict(latenessOk), no_duplicates_no_missing: verdict(exactOk) },
    pass: latenessOk && exactOk,
  };
}
