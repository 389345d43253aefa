// Runbook runs as the end-to-end tests see them: requested with `/dr run`, their one message and its buttons in the
// Slack stand-in, their rows in PostgreSQL (runbook_runs, runbook_steps, the audit trail under the run).
import { expect } from 'vitest';
import type { SlackCall } from '../../src/adapters/slack/stand-in.js';
import { messageOf } from '../../src/shared/errors.js';
import { allText, buttonsOf, type Sent, type World } from './e2e.js';
import { clickButton } from './recovery.js';
import { waitUntil } from './wait.js';

/** `/dr <text>` as `user`, in #emergency. */
export function dr(w: World, text: string, user: string): Promise<Sent> {
  return w.command(text, { user }, '/dr');
}

/** Requests a run and reads its number off the reply. */
export async function requestRun(w: World, text: string, user: string): Promise<number> {
  const reply = await w.reply(await dr(w, `run ${text}`, user));
  const match = /RUN-(\d+)/.exec(reply);
  if (!match) throw new Error(`the reply names no run: ${reply}`);
  return Number(match[1]);
}

export async function runState(w: World, run: number): Promise<string> {
  const { rows } = await w.sql.query<{ state: string }>('SELECT state FROM runbook_runs WHERE number = $1', [run]);
  return rows[0]?.state ?? 'none';
}

/** Each step as `<id>:<state>:<attempts>`, in order. */
export async function stepStates(w: World, run: number): Promise<string[]> {
  const { rows } = await w.sql.query<{ id: string; state: string; attempts: number }>(
    'SELECT id, state, attempts FROM runbook_steps WHERE run = $1 ORDER BY step_index',
    [run],
  );
  return rows.map((r) => `${r.id}:${r.state}:${r.attempts}`);
}

export async function untilState(w: World, run: number, state: string, timeoutMs = 15_000): Promise<void> {
  await waitUntil(`RUN-${run} ${state}`, async () => (await runState(w, run)) === state, timeoutMs, 50);
}

/** The run's message as it is now: its post, with the body of its latest update. */
export function runMessage(w: World, run: number): SlackCall | undefined {
  const re = new RegExp(`RUN-${run}\\b`);
  const post = w.topLevelPosts().find((c) => c.result?.ts !== undefined && re.test(allText(c.body)));
  if (!post) return undefined;
  const update = w.slack
    .updates()
    .filter((u) => u.body.ts === post.result?.ts)
    .at(-1);
  return update ? { ...post, body: { ...update.body, channel: post.body.channel } } : post;
}

/**
 * Waits until the run's message shows exactly these buttons; returns it. A timeout says what the message shows
 * instead, with the processes' warnings and errors.
 */
export async function withButtons(w: World, run: number, labels: string[]): Promise<SlackCall> {
  const shown = () => buttonsOf(runMessage(w, run)?.body ?? {}).map((b) => b.label);
  try {
    return await waitUntil(`RUN-${run} showing ${labels.join(', ')}`, () => {
      const message = runMessage(w, run);
      return message && shown().join() === labels.join() ? message : undefined;
    });
  } catch (err) {
    const text = allText(runMessage(w, run)?.body ?? {});
    const warnings = w.output().filter((l) => /"level":(40|50)/.test(l));
    throw new Error(`${messageOf(err)}; it shows [${shown().join(', ')}]:\n${text}\n${warnings.join('\n')}`, {
      cause: err,
    });
  }
}

/** Clicks a button of the run's message once it shows exactly `labels`; Slack gets its 200. */
export async function clickRun(w: World, run: number, labels: string[], label: string, user: string): Promise<void> {
  const sent = await clickButton(w, await withButtons(w, run, labels), label, user);
  expect(sent.status).toBe(200);
}

/** The run's audit trail, oldest first. */
export async function runAudit(w: World, run: number): Promise<{ actor: string; action: string; detail: string }[]> {
  const { rows } = await w.sql.query<{ actor: string; action: string; detail: string }>(
    'SELECT actor, action, detail FROM audit_log WHERE run = $1 ORDER BY id',
    [run],
  );
  return rows;
}
