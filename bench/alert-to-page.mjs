// Alert to page: 200 Alertmanager firings for 200 groups, 20 at a time, into the real process (node dist/main.js);
// the time from sending each webhook to the first PagerDuty trigger for its incident at the (fake) PagerDuty.
// Baseline, in the same run: `/incident sev1` through a signed slash command, 20 at a time, from sending it to its
// page. The two alternate in rounds of 20 (alerts then commands, then commands then alerts, ...), each round waiting
// for its pages before the next starts, so both paths see the same process, database and load. Targets: alert p99 <
// 500 ms and at most 1.2x the slash-command p99; every firing and every command paged (a missing figure fails). A
// warm-up round of 20 of each (other groups) runs first on the fresh process and is printed, not counted.
import { Agent, request } from 'node:http';
import { onCleanup } from './support/cleanup.mjs';
import { startFakes } from './support/fakes.mjs';
import { CHANNEL, startOwnLifeline } from './support/processes.mjs';
import { commandBody, postSigned } from './support/slack-requests.mjs';
import { ratio, summary, verdict } from './support/stats.mjs';

export const name = 'alert-to-page';
export const timeLimitMs = 300_000;

const GROUPS = Number(process.env.BENCH_ALERT_GROUPS ?? 200);
const IN_FLIGHT = Number(process.env.BENCH_ALERT_IN_FLIGHT ?? 20);
const TARGET_P99_MS = 500;
const MAX_RATIO = 1.2;
/** How long a round waits for its pages before the next round starts (missing ones count as missing). */
const ROUND_WAIT_MS = 15_000;
const TOKEN = 'bench-alerts-token-0123456789abcdef';

function firing(group) {
  return JSON.stringify({
    version: '4',
    groupKey: `{}/{severity="critical"}:{alertname="BenchGroup${group}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'lifeline',
    groupLabels: { alertname: `BenchGroup${group}` },
    commonLabels: { alertname: `BenchGroup${group}`, severity: 'critical', instance: `web-${group}` },
    commonAnnotations: { summary: `Bench group ${group} is failing` },
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: `BenchGroup${group}`, severity: 'critical' },
        annotations: {},
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: `http://prometheus:9090/graph?g0.expr=bench_${group}`,
        fingerprint: `f${group}`,
      },
    ],
  });
}

/** POSTs one webhook; resolves { status, incident } and never rejects. */
function postAlert(url, body, agent) {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let incident;
          try {
            incident = /^INC-(\d+)$/.exec(JSON.parse(Buffer.concat(chunks).toString('utf8')).incident ?? '')?.[1];
          } catch {
            // not JSON: no incident
          }
          resolve({ status: res.statusCode ?? 0, incident: incident ? Number(incident) : undefined });
        });
        res.on('error', (err) => resolve({ status: 0, error: err.message }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timed out after 10 s')));
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    req.end(body);
  });
}

export async function run(print) {
  const { slack, pagerduty } = await startFakes();
  const { lifeline } = await startOwnLifeline({
    tag: 'alertpage',
    steps: [{ after_minutes: 0, notify: 'oncall' }],
    slack,
    pagerduty,
    configOptions: { extraYaml: `alerts:\n  token: "${TOKEN}"\n  severity_map: { critical: sev1 }\n` },
  });
  const alertsUrl = `http://127.0.0.1:${lifeline.port}/alerts/alertmanager`;
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  onCleanup('close HTTP agent', async () => agent.destroy());

  const firstTrigger = (incident) =>
    pagerduty.triggers().find((e) => e.dedup_key === `lifeline-INC-${incident}-oncall`)?.at;
  const waitFor = async (check, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (check()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };

  const alerts = []; // { sentAt, incident, status }
  const commands = []; // { sentAt, responseId, status }
  const commandIncident = (responseId) => {
    const reply = slack.responses.find((r) => r.id === responseId && /Declared \*INC-(\d+)\*/.test(r.text));
    return reply ? Number(/Declared \*INC-(\d+)\*/.exec(reply.text)[1]) : undefined;
  };
  const latency = (sentAt, incident) => {
    const at = incident === undefined ? undefined : firstTrigger(incident);
    return at === undefined ? undefined : at - sentAt;
  };
  const alertRound = async (groups) => {
    const sent = await Promise.all(
      groups.map(async (group) => {
        const sentAt = Date.now();
        return { sentAt, ...(await postAlert(alertsUrl, firing(group), agent)) };
      }),
    );
    alerts.push(...sent);
    await waitFor(() => sent.every((a) => a.incident === undefined || firstTrigger(a.incident)), ROUND_WAIT_MS);
    return sent.map((a) => latency(a.sentAt, a.incident));
  };
  const commandRound = async (groups) => {
    const sent = await Promise.all(
      groups.map(async (group) => {
        const responseUrl = slack.newResponseUrl();
        const body = commandBody({
          command: '/incident',
          text: `sev1 Bench: slash command ${group}`,
          user_id: 'U0DECLARER',
          channel_id: CHANNEL,
          response_url: responseUrl,
        });
        const sentAt = Date.now();
        const result = await postSigned(lifeline.eventsUrl, body, { agent });
        return { sentAt, status: result.status, responseId: responseUrl.slice(responseUrl.lastIndexOf('/') + 1) };
      }),
    );
    commands.push(...sent);
    await waitFor(
      () =>
        sent.every((c) => {
          const incident = commandIncident(c.responseId);
          return incident !== undefined && firstTrigger(incident);
        }),
      ROUND_WAIT_MS,
    );
    return sent.map((c) => latency(c.sentAt, commandIncident(c.responseId)));
  };
  // Warm-up, not counted (but printed): one round of each on a fresh process, whose first requests pay for lazy
  // compilation and opening pool connections, which a running Lifeline has long paid.
  const warm = { alerts: await alertRound(Array.from({ length: IN_FLIGHT }, (_, i) => GROUPS + i)) };
  warm.commands = await commandRound(Array.from({ length: IN_FLIGHT }, (_, i) => GROUPS + i));
  alerts.length = 0;
  commands.length = 0;
  const warmP99 = (values) => summary(values.filter((v) => v !== undefined)).p99;
  print(
    `warm-up (not counted): ${IN_FLIGHT} alerts p99 ${warmP99(warm.alerts)} ms, ${IN_FLIGHT} commands p99 ${warmP99(warm.commands)} ms`,
  );
  const started = Date.now();
  for (let round = 0; round * IN_FLIGHT < GROUPS; round++) {
    const groups = Array.from(
      { length: Math.min(IN_FLIGHT, GROUPS - round * IN_FLIGHT) },
      (_, i) => round * IN_FLIGHT + i,
    );
    // Alternate which path goes first, so neither always meets the process warmer or busier.
    const [first, second] = round % 2 === 0 ? [alertRound, commandRound] : [commandRound, alertRound];
    const a = await first(groups);
    const b = await second(groups);
    const [alertRun, commandRun] = round % 2 === 0 ? [a, b] : [b, a];
    const p99 = (values) => summary(values.filter((v) => v !== undefined)).p99;
    print(`round ${round + 1}: alerts p99 ${p99(alertRun)} ms, commands p99 ${p99(commandRun)} ms`);
  }
  const wallMs = Date.now() - started;
  agent.destroy();

  const alertMs = alerts.map((a) => latency(a.sentAt, a.incident)).filter((ms) => ms !== undefined);
  const commandMs = commands
    .map((c) => latency(c.sentAt, commandIncident(c.responseId)))
    .filter((ms) => ms !== undefined);
  const alertMissing = GROUPS - alertMs.length;
  const commandMissing = GROUPS - commandMs.length;
  const alertStats = summary(alertMs);
  const commandStats = summary(commandMs);
  const p99Ratio = ratio(alertStats.p99, commandStats.p99);
  const alertIncidents = new Set(alerts.map((a) => a.incident).filter((n) => n !== undefined)).size;

  print(
    `alerts  : ${alerts.length} firings for ${GROUPS} groups, ${IN_FLIGHT} at a time; ${alerts.filter((a) => a.status === 200).length} answered 200, ${alertIncidents} incidents; webhook sent -> first PagerDuty trigger p50 ${alertStats.p50} ms  p99 ${alertStats.p99} ms  max ${alertStats.max} ms over ${alertStats.n} (${alertMissing} missing)`,
  );
  print(
    `commands: ${commands.length} /incident sev1, ${IN_FLIGHT} at a time; ${commands.filter((c) => c.status === 200).length} acked 200; command sent -> first PagerDuty trigger p50 ${commandStats.p50} ms  p99 ${commandStats.p99} ms  max ${commandStats.max} ms over ${commandStats.n} (${commandMissing} missing)`,
  );
  print(
    `ratio alert_p99 / command_p99 = ${p99Ratio}; ${wallMs} ms for the ${Math.ceil(GROUPS / IN_FLIGHT)} rounds of each`,
  );
  print(`lifeline log lines: warn ${lifeline.warnings}, error ${lifeline.errors}`);
  for (const line of lifeline.firstProblems) print(`  lifeline log: ${line}`);

  const complete = alertMissing === 0 && commandMissing === 0 && alertIncidents === GROUPS;
  const underTarget = complete && alertStats.p99 !== null && alertStats.p99 < TARGET_P99_MS;
  const withinRatio = complete && p99Ratio !== null && p99Ratio <= MAX_RATIO;
  print(`${verdict(underTarget)} alert -> page p99 < ${TARGET_P99_MS} ms (${alertStats.p99} ms)`);
  print(`${verdict(withinRatio)} alert p99 at most ${MAX_RATIO}x the slash-command p99 (${p99Ratio})`);
  print(
    `${verdict(complete)} every firing and every command paged, one incident per group (${alertMissing} + ${commandMissing} missing, ${alertIncidents} incidents)`,
  );

  const lifelineExit = await lifeline.stop();
  print(`lifeline exited with ${lifelineExit} after SIGTERM`);
  return {
    headline: `alert p99 ${alertStats.p99} ms vs /incident p99 ${commandStats.p99} ms (ratio ${p99Ratio})`,
    groups: GROUPS,
    in_flight: IN_FLIGHT,
    alert_to_page_ms: alertStats,
    command_to_page_ms: commandStats,
    ratio_p99: p99Ratio,
    warm_up_alert_p99_ms: warmP99(warm.alerts),
    warm_up_command_p99_ms: warmP99(warm.commands),
    alerts_missing: alertMissing,
    commands_missing: commandMissing,
    alert_incidents: alertIncidents,
    log_warnings: lifeline.warnings,
    log_errors: lifeline.errors,
    lifeline_exit_code: lifelineExit,
    targets: {
      alert_p99_under_500ms: verdict(underTarget),
      alert_p99_at_most_1_2x_command: verdict(withinRatio),
      every_one_paged: verdict(complete),
    },
    pass: underTarget && withinRatio && complete,
  };
}
