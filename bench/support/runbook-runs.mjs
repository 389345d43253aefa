// A runbook run driven as people drive it in Slack: `/dr run <name>` by the engineering lead, Approve clicked by the
// CTO, then the run's last word in its thread ("RUN-<n> succeeded" or "stopped") at the fake Slack. Both ends are
// taken on this process's clock: the click's HTTP answer here, the post's arrival at the fake Slack (same process).
import { CHANNEL } from './processes.mjs';
import { lastWords } from './slack-posts.mjs';
import { buttonBody, commandBody, postSigned } from './slack-requests.mjs';

const RUN_LIMIT_MS = 60_000;

async function waitFor(what, check, limitMs = RUN_LIMIT_MS) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Requests `runbook`, approves it, waits for its end; resolves { number, approvedAt, reportAt } (epoch ms) for a run
 * that succeeded and throws (with the last posts and log lines) for one that did not.
 */
export async function approvedRun({ lifeline, slack, pool, runbook }) {
  const before = (await pool.query('SELECT coalesce(max(number), 0) AS n FROM runbook_runs')).rows[0].n;
  const sent = await postSigned(
    lifeline.eventsUrl,
    commandBody({
      command: '/dr',
      text: `run ${runbook}`,
      user_id: 'U0LEAD',
      channel_id: CHANNEL,
      response_url: slack.newResponseUrl(),
    }),
  );
  if (sent.status !== 200) throw new Error(`/dr run ${runbook} answered HTTP ${sent.status}`);
  const run = await waitFor(`the message of the run of ${runbook}`, async () => {
    const { rows } = await pool.query(
      `SELECT number, progress_ts FROM runbook_runs
        WHERE number > $1 AND runbook = $2 AND state = 'awaiting_approval' AND progress_ts IS NOT NULL`,
      [before, runbook],
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
  const approvedAt = Date.now();
  if (click.status !== 200) throw new Error(`Approve answered HTTP ${click.status}`);
  const ended = new RegExp(`\\bRUN-${run.number} (succeeded|stopped)\\b`);
  const last = await waitFor(`RUN-${run.number} to end`, async () =>
    slack.posts.find((p) => p.thread_ts === run.progress_ts && ended.test(p.text)),
  );
  if (!last.text.includes(`RUN-${run.number} succeeded`)) {
    throw new Error(`RUN-${run.number} did not succeed: ${last.text}${lastWords(slack, lifeline)}`);
  }
  return { number: run.number, approvedAt, reportAt: last.at };
}
