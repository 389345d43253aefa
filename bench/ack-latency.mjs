// Ack latency: how long Slack waits for the HTTP answer (Bolt's ack) to a signed `/incident` command, for the real
// built Lifeline against a bare Bolt app that only acks. Both run as child processes; the load comes from this one.
import { Agent } from 'node:http';
import { onCleanup } from './support/cleanup.mjs';
import { FakePagerDuty, FakeSlack } from './support/fakes.mjs';
import { createDatabase, createQueuePrefix } from './support/infra.mjs';
import { CHANNEL, startBareApp, startLifeline, writeConfig } from './support/processes.mjs';
import { commandBody, postSigned, runPool } from './support/slack-requests.mjs';
import { ratio, summary, verdict } from './support/stats.mjs';

export const name = 'ack-latency';
export const timeLimitMs = 300_000;

const REQUESTS = Number(process.env.BENCH_ACK_REQUESTS ?? 500);
const IN_FLIGHT = Number(process.env.BENCH_ACK_IN_FLIGHT ?? 50);
const WARMUP = Number(process.env.BENCH_ACK_WARMUP ?? 50);
/** Each server gets its requests in rounds, interleaved L,B,B,L,L,B,.. so that background load hits both alike. */
const ROUNDS = Number(process.env.BENCH_ACK_ROUNDS ?? 4);
const TARGET_P99_MS = 100;
const TARGET_RATIO = 1.5;
/** Incidents declared during the warm-up; `status INC-k` names one of them, so it always finds its incident. */
const WARMUP_DECLARATIONS = 5;

/** The command mix, per 20 requests: 8 list, 6 status INC-k, 4 help, 2 `sev3 <title>` (10% declarations). */
const MIX = [
  ['list', 8],
  ['status', 6],
  ['help', 4],
  ['sev3', 2],
];

/** A deterministic pseudo-random sequence, so that both servers get exactly the same commands in the same order. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function commandTexts(count, seed) {
  const random = mulberry32(seed);
  const per20 = MIX.flatMap(([kind, n]) => Array(n).fill(kind));
  const kinds = [];
  while (kinds.length < count) {
    const block = [...per20];
    for (let i = block.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [block[i], block[j]] = [block[j], block[i]];
    }
    kinds.push(...block);
  }
  let declared = 0;
  return kinds.slice(0, count).map((kind) => {
    switch (kind) {
      case 'status':
        return { kind, text: `status INC-${1 + Math.floor(random() * WARMUP_DECLARATIONS)}` };
      case 'sev3':
        return { kind, text: `sev3 Bench: checkout latency above SLO, run ${seed}-${++declared}` };
      default:
        return { kind, text: kind };
    }
  });
}

function mixDescription(texts) {
  const counts = {};
  for (const t of texts) counts[t.kind] = (counts[t.kind] ?? 0) + 1;
  return MIX.map(([kind]) => `${kind === 'sev3' ? 'sev3 <title>' : kind === 'status' ? 'status INC-k' : kind} ${counts[kind] ?? 0}`).join(', ');
}

/** Sends `texts` to one server over `agent`, IN_FLIGHT at a time, each with its own trigger_id and response_url. */
async function load(target, texts, slack, agent) {
  const started = Date.now();
  const results = await runPool(
    texts.length,
    IN_FLIGHT,
    async (i) => {
      const responseUrl = slack.newResponseUrl();
      const sentAt = Date.now();
      const body = commandBody({ command: '/incident', text: texts[i].text, user_id: 'U0DECLARER', channel_id: CHANNEL, response_url: responseUrl });
      const result = await postSigned(target.eventsUrl, body, { agent });
      return { ...result, kind: texts[i].kind, responseId: responseUrl.slice(responseUrl.lastIndexOf('/') + 1), sentAt };
    },
    120_000,
  );
  return { results: results.filter(Boolean), wallMs: Date.now() - started };
}

/**
 * A keep-alive agent with IN_FLIGHT connections already open (by IN_FLIGHT unmeasured `help` commands whose replies
 * have all arrived), so that a measured round times the app, not TCP connection setup, and starts from quiet.
 */
async function primedAgent(target, slack, isLifeline) {
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const priming = Array.from({ length: IN_FLIGHT }, () => ({ kind: 'help', text: 'help' }));
  const { results } = await load(target, priming, slack, agent);
  if (isLifeline) await waitForReplies(slack, results, 30_000);
  return agent;
}

/** Waits (bounded) until every request of a Lifeline round has had its reply: in the ack itself or at its response_url. */
async function waitForReplies(slack, results, timeoutMs) {
  const inAck = results.filter((r) => r.ackText !== undefined).length;
  const ids = new Set(results.filter((r) => r.ackText === undefined).map((r) => r.responseId));
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  while (Date.now() < deadline) {
    seen = inAck + slack.responses.filter((r) => ids.has(r.id)).length;
    if (seen >= inAck + ids.size) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen;
}

export async function run(print) {
  const slack = await new FakeSlack().start();
  onCleanup('stop fake Slack', () => slack.stop());
  const pagerduty = await new FakePagerDuty().start();
  onCleanup('stop fake PagerDuty', () => pagerduty.stop());
  const db = await createDatabase('ack');
  const queue = createQueuePrefix('ack');
  // Paging is not exercised here (sev3 does not page); the ladder only has to be valid.
  const configPath = writeConfig([{ after_minutes: 0, notify: 'oncall' }]);

  const lifeline = await startLifeline({ databaseUrl: db.url, queuePrefix: queue.prefix, slackApiUrl: slack.apiUrl, pagerdutyUrl: pagerduty.url, configPath });
  const bare = await startBareApp({ slackApiUrl: slack.apiUrl });

  // Warm-up: the same mix, its first requests being the declarations that `status INC-k` refers to.
  const warmTexts = commandTexts(WARMUP, 1);
  const warmup = [
    ...Array.from({ length: WARMUP_DECLARATIONS }, (_, i) => ({ kind: 'sev3', text: `sev3 Bench warm-up incident ${i + 1}` })),
    ...warmTexts.filter((t) => t.kind !== 'sev3'),
  ].slice(0, Math.max(WARMUP, WARMUP_DECLARATIONS));
  // The declarations go one by one so that they get INC-1..INC-5 before the rest of the warm-up.
  const warmAgent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  try {
    for (const text of warmup.slice(0, WARMUP_DECLARATIONS)) {
      const [r] = (await load(lifeline, [text], slack, warmAgent)).results;
      if (r.status !== 200) throw new Error(`warm-up declaration answered ${r.status} ${r.error ?? ''}`);
    }
    const warmLifeline = await load(lifeline, warmup.slice(WARMUP_DECLARATIONS), slack, warmAgent);
    await waitForReplies(slack, warmLifeline.results, 30_000);
    await load(bare, warmup, slack, warmAgent);
  } finally {
    warmAgent.destroy();
  }
  print(`warm-up: ${warmup.length} requests to each server (${WARMUP_DECLARATIONS} sev3 declarations first, so that INC-1..INC-${WARMUP_DECLARATIONS} exist)`);

  const texts = commandTexts(REQUESTS, 42);
  const perRound = Math.ceil(texts.length / ROUNDS);
  const measured = { lifeline: [], bare: [] };
  const cpu = { lifeline: 0, bare: 0 };
  const replies = { expected: 0, seen: 0, drainMs: [] };
  const order = [];
  for (let round = 0; round < ROUNDS; round++) {
    const slice = texts.slice(round * perRound, (round + 1) * perRound);
    if (slice.length === 0) break;
    const sequence = round % 2 === 0 ? ['lifeline', 'bare'] : ['bare', 'lifeline'];
    for (const which of sequence) {
      order.push(which === 'lifeline' ? 'L' : 'B');
      const target = which === 'lifeline' ? lifeline : bare;
      const agent = await primedAgent(target, slack, which === 'lifeline');
      const cpuBefore = target.cpuMs();
      const { results, wallMs } = await load(target, slice, slack, agent).finally(() => agent.destroy());
      measured[which].push(...results);
      if (which === 'lifeline') {
        // Let Lifeline finish its after-ack work (replies, cards) before the bare app's round, so it does not
        // steal the bare app's CPU; and check that every request really got its answer.
        const before = Date.now();
        const seen = await waitForReplies(slack, results, 60_000);
        replies.expected += results.length;
        replies.seen += seen;
        replies.drainMs.push(Date.now() - before);
      }
      // CPU for the round's requests, including Lifeline's after-ack work (the replies drained above).
      const cpuAfter = target.cpuMs();
      if (cpuBefore !== null && cpuAfter !== null) cpu[which] += cpuAfter - cpuBefore;
      print(`round ${round + 1} ${which}: ${results.length} requests in ${wallMs} ms`);
    }
  }

  const figures = {};
  for (const which of ['bare', 'lifeline']) {
    const ok = measured[which].filter((r) => r.status === 200);
    const errors = measured[which].length - ok.length;
    const firstError = measured[which].find((r) => r.status !== 200);
    figures[which] = {
      ...summary(ok.map((r) => r.ms)),
      sent: measured[which].length,
      errors,
      ...(firstError ? { first_error: `${firstError.status} ${firstError.error ?? ''}`.trim() } : {}),
      cpu_ms_per_request: measured[which].length ? Math.round((cpu[which] / measured[which].length) * 100) / 100 : null,
      by_kind_p99: Object.fromEntries(MIX.map(([kind]) => [kind, summary(ok.filter((r) => r.kind === kind).map((r) => r.ms)).p99])),
    };
  }
  // What the user waits for: from sending the command to Lifeline's reply, in the ack itself or at the response_url.
  const sentAt = new Map(measured.lifeline.map((r) => [r.responseId, r.sentAt]));
  const replyMs = [
    ...measured.lifeline.filter((r) => r.ackText !== undefined).map((r) => r.ms),
    ...slack.responses.filter((r) => sentAt.has(r.id)).map((r) => r.at - sentAt.get(r.id)),
  ];
  figures.lifeline.reply = summary(replyMs);
  figures.lifeline.replies_seen = replies.seen;
  figures.lifeline.replies_expected = replies.expected;
  figures.lifeline.log_warnings = lifeline.warnings;
  figures.lifeline.log_errors = lifeline.errors;

  const p99Ratio = ratio(figures.lifeline.p99, figures.bare.p99);
  const p99Ok = figures.lifeline.p99 !== null && figures.lifeline.p99 < TARGET_P99_MS && figures.lifeline.errors === 0;
  const ratioOk = p99Ratio !== null && p99Ratio <= TARGET_RATIO;

  print(`mix per ${texts.length} requests: ${mixDescription(texts)}; ${IN_FLIGHT} in flight; ${ROUNDS} rounds per server, interleaved ${order.join(',')}`);
  for (const which of ['bare', 'lifeline']) {
    const f = figures[which];
    print(
      `${which === 'bare' ? 'bare bolt' : 'lifeline '}: ack p50 ${f.p50} ms  p99 ${f.p99} ms  max ${f.max} ms  (${f.sent - f.errors} ok, ${f.errors} errors${f.first_error ? `, first: ${f.first_error}` : ''}); CPU ${f.cpu_ms_per_request} ms/request; p99 by command ${JSON.stringify(f.by_kind_p99)}`,
    );
  }
  print(
    `lifeline replies (in the ack or via response_url): ${replies.seen}/${replies.expected}; send->reply p50 ${figures.lifeline.reply.p50} ms p99 ${figures.lifeline.reply.p99} ms; log lines warn ${lifeline.warnings} error ${lifeline.errors}`,
  );
  for (const line of lifeline.firstProblems) print(`  lifeline log: ${line}`);
  print(`ratio lifeline_p99 / bare_p99 = ${p99Ratio}`);
  print(`${verdict(p99Ok)} lifeline ack p99 < ${TARGET_P99_MS} ms (${figures.lifeline.p99} ms${figures.lifeline.errors ? `, ${figures.lifeline.errors} requests failed` : ''})`);
  print(`${verdict(ratioOk)} lifeline ack p99 <= ${TARGET_RATIO} x bare p99 (${p99Ratio}x)`);

  await bare.stop();
  const lifelineExit = await lifeline.stop();
  print(`lifeline exited with ${lifelineExit} after SIGTERM`);

  return {
    mix: Object.fromEntries(MIX.map(([kind]) => [kind, texts.filter((t) => t.kind === kind).length])),
    requests_per_server: texts.length,
    in_flight: IN_FLIGHT,
    warmup_per_server: warmup.length,
    lifeline: figures.lifeline,
    bare: figures.bare,
    ratio_p99: p99Ratio,
    drain_ms_after_rounds: replies.drainMs,
    lifeline_exit_code: lifelineExit,
    targets: { lifeline_p99_under_100ms: verdict(p99Ok), ratio_at_most_1_5: verdict(ratioOk) },
    pass: p99Ok && ratioOk,
  };
}
