// Signed slash commands exactly as Slack sends them (v0 signature, form body), sent with node:http so that the
// measured time is send -> HTTP response (Bolt's ack) with as little client overhead as possible.
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { URLSearchParams } from 'node:url';

export const SIGNING_SECRET = 'bench-signing-secret-0123456789';
export const BOT_TOKEN = 'xoxb-bench-bot-token-0123456789';

export function sign(secret, timestamp, body) {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

let triggerCounter = 0;
export function newTriggerId() {
  return `${Date.now()}.${++triggerCounter}.${randomBytes(6).toString('hex')}`;
}

export function commandBody({ command, text, user_id, channel_id, response_url, trigger_id }) {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0FAKE',
    team_domain: 'fake',
    channel_id,
    channel_name: 'devops-emergency',
    user_id,
    user_name: user_id.toLowerCase(),
    command,
    text,
    api_app_id: 'A0LIFELINE',
    response_url,
    trigger_id: trigger_id ?? newTriggerId(),
  }).toString();
}

/** A block_actions payload for a button click, as Slack sends it (form field `payload=<json>`). */
export function buttonBody({
  action_id,
  value,
  block_id,
  label,
  user_id,
  channel_id,
  message_ts,
  response_url,
  trigger_id,
}) {
  const payload = {
    type: 'block_actions',
    team: { id: 'T0FAKE', domain: 'fake' },
    user: { id: user_id, username: user_id.toLowerCase(), team_id: 'T0FAKE' },
    api_app_id: 'A0LIFELINE',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts, channel_id, is_ephemeral: false },
    trigger_id: trigger_id ?? newTriggerId(),
    channel: { id: channel_id, name: 'devops-emergency' },
    message: { type: 'message', ts: message_ts, text: 'card' },
    response_url,
    actions: [
      {
        type: 'button',
        action_id,
        block_id,
        value,
        text: { type: 'plain_text', text: label },
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/**
 * POSTs one signed body; resolves { ms, status, ackText } where ms runs from just before the request is written to the
 * end of the response and ackText is a reply carried in the ack itself (help, refusals), if any. Never rejects: a
 * network error or timeout gives { ms, status: 0, error }.
 */
export function postSigned(url, body, { secret = SIGNING_SECRET, agent, timeoutMs = 10_000 } = {}) {
  return new Promise((resolve) => {
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': Buffer.byteLength(body),
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': sign(secret, timestamp, body),
    };
    const started = performance.now();
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      resolve({ ms: performance.now() - started, ...result });
    };
    const req = http.request(url, { method: 'POST', headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () =>
        done({ status: res.statusCode ?? 0, ackText: ackText(Buffer.concat(chunks).toString('utf8')) }),
      );
      res.on('error', (err) => done({ status: 0, error: err.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => done({ status: 0, error: err.message }));
    req.end(body);
  });
}

/**
 * Runs `count` jobs with at most `concurrency` in flight. `job(i)` must resolve (not reject). Bounded by count and by
 * `deadlineMs` (jobs not started by then are skipped). Returns the results in index order.
 */
export async function runPool(count, concurrency, job, deadlineMs = 120_000) {
  const results = new Array(count);
  const stopAt = Date.now() + deadlineMs;
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= count || Date.now() > stopAt) return;
      results[i] = await job(i);
    }
  });
  await Promise.all(lanes);
  return results;
}

function ackText(raw) {
  if (raw === '') return undefined;
  try {
    return JSON.parse(raw).text;
  } catch {
    return undefined;
  }
}
