// Messages that wait for Slack. When Slack is down (the very case the CLI exists for), what was done through the API,
// the plans of jobs and the results of jobs are kept here and posted once Slack answers again: after the next API
// command and by every worker's reconciler. Incidents declared while Slack was down get their card first, so their
// notes can thread.
import type { ChatMessage, ChatPort, PostedMessage } from '../../adapters/slack/port.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import type { IncidentNotifier } from '../../domain/incidents/notifier.js';
import * as incidents from '../../domain/incidents/store.js';
import { incidentId } from '../../domain/incidents/model.js';
import type { Logger } from '../../shared/log.js';
import { jobId, type RecoveryJob } from '../../domain/recovery/model.js';
import * as jobs from '../../domain/recovery/store.js';
import { line, rebuilt, type MrkdwnText } from './blocks.js';
import { planMessage } from './recovery-replies.js';

export interface OutboxEntry {
  /** The incident whose card thread it belongs in; without one it goes top-level in `channel`. */
  readonly incident?: number | undefined;
  readonly channel?: string | undefined;
  /** Rendered mrkdwn: the outbox keeps what a renderer built, and posts it as it is. */
  readonly text: MrkdwnText;
}

export async function queueForSlack(db: Pick<Db, 'query'>, entry: OutboxEntry): Promise<void> {
  await db.query('INSERT INTO slack_outbox (incident, channel, text) VALUES ($1, $2, $3)', [
    entry.incident ?? null,
    entry.channel ?? null,
    entry.text,
  ]);
}

/**
 * A job's plan that Slack did not take. It goes out as the real plan message, rendered from the job's state at that
 * moment (with Approve/Reject while it still awaits approval), and is then recorded as the job's approval message.
 */
export async function queuePlanForSlack(
  db: Pick<Db, 'query'>,
  job: Pick<RecoveryJob, 'number' | 'requestedIn'>,
): Promise<void> {
  await db.query('INSERT INTO slack_outbox (plan_of, channel) VALUES ($1, $2)', [job.number, job.requestedIn]);
}

export interface OutboxDeps {
  readonly db: Db;
  readonly chat: ChatPort;
  readonly notifier: IncidentNotifier;
  readonly log: Logger;
  /**
   * An incident younger than this may have its card being posted right now by the process that declared it: it is
   * left alone, or it would get two cards.
   */
  readonly cardGraceMs: number;
  /** Who may approve the job, for plans rendered at delivery. */
  readonly approvers: (job: RecoveryJob) => readonly string[];
}

/**
 * Posts the cards that are missing and then the waiting messages, oldest first. Stops at the first Slack failure
 * (Slack is still down: the rest keeps its order for the next try). Safe to run from several processes at once:
 * each message is claimed under a row lock and marked sent in the same transaction.
 */
export async function deliverOutbox(deps: OutboxDeps): Promise<{ delivered: number; pending: number }> {
  const { db } = deps;
  const { rows: uncarded } = await db.query<{ number: number }>(
    'SELECT number FROM incidents WHERE card_ts IS NULL AND declared_at < now() - make_interval(secs => $1) ORDER BY number',
    [deps.cardGraceMs / 1000],
  );
  for (const { number } of uncarded) {
    // Under the incident's row lock (another process may be delivering too): one late card, never two.
    const posted = await inTransaction(db, async (tx) => {
      const { rows } = await tx.query(
        'SELECT 1 FROM incidents WHERE number = $1 AND card_ts IS NULL FOR UPDATE SKIP LOCKED',
        [number],
      );
      if (rows.length === 0) return true;
      const incident = await incidents.getIncident(tx, number);
      if (!incident) return true;
      const card = await deps.notifier.announce(incident).catch((err: Error) => err);
      if (card instanceof Error) return card;
      await incidents.setCard(tx, number, card.channel, card.ts);
      deps.log.info(
        { incident: incidentId(number) },
        'incident card posted late (Slack was unreachable at declaration)',
      );
      return true;
    });
    if (posted instanceof Error) return stopped(deps, posted, 0);
  }
  let delivered = 0;
  for (;;) {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{
        id: string;
        incident: number | null;
        channel: string | null;
        text: string | null;
        plan_of: number | null;
        card_channel: string | null;
        card_ts: string | null;
      }>(
        `SELECT o.id, o.incident, o.channel, o.text, o.plan_of, i.card_channel, i.card_ts
           FROM slack_outbox o LEFT JOIN incidents i ON i.number = o.incident
          WHERE o.sent_at IS NULL ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED`,
      );
      const entry = rows[0];
      if (!entry) {
        await client.query('COMMIT');
        return { delivered, pending: 0 };
      }
      if (entry.incident !== null && entry.card_ts === null) {
        // Its incident's card is not there yet (Slack refused it, or it is being posted): wait, keeping the order.
        await client.query('ROLLBACK');
        return stopped(deps, new Error(`the card of incident ${entry.incident} is not posted yet`), delivered);
      }
      const channel = entry.card_channel ?? entry.channel;
      const plan = entry.plan_of === null ? undefined : await jobs.getJob(client, entry.plan_of);
      // A text was written by queueForSlack, which takes MrkdwnText only.
      const text = (entry.text ?? '') as MrkdwnText;
      const message: ChatMessage = plan ? planMessage(plan, deps.approvers(plan)) : line(rebuilt(text));
      const sent = channel
        ? await deps.chat.post(channel, message, entry.card_ts ?? undefined).catch((err: Error) => err)
        : new Error(`outbox entry ${entry.id} has nowhere to go`);
      if (sent instanceof Error) {
        await client.query('ROLLBACK');
        return stopped(deps, sent, delivered);
      }
      if (plan) await jobs.setApprovalMessage(client, plan.number, sent.channel, sent.ts);
      await client.query('UPDATE slack_outbox SET sent_at = clock_timestamp() WHERE id = $1', [entry.id]);
      await client.query('COMMIT');
      delivered += 1;
      if (plan) await refreshLatePlan(deps, plan, sent);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

/**
 * A decision made while the plan was on its way (an approval through the API, an expiry) found no message to update:
 * the job had none recorded yet. Now that it has, the message is brought up to date. (A decision made after the
 * record updates the message itself.)
 */
async function refreshLatePlan(deps: OutboxDeps, rendered: RecoveryJob, at: PostedMessage): Promise<void> {
  const now = await jobs.getJob(deps.db, rendered.number);
  if (!now || (now.state === rendered.state && now.decidedBy === rendered.decidedBy)) return;
  await deps.chat
    .update(at, planMessage(now, deps.approvers(now)))
    .catch((err: Error) =>
      deps.log.warn({ job: jobId(now.number), err: err.message }, 'late plan message could not be brought up to date'),
    );
}

/**
 * Delivers the outbox soon, in the background, one run at a time in this process (a call while one runs makes it run
 * once more afterwards), so a burst of API commands neither piles up runs nor reorders messages between them.
 */
export function createOutboxCourier(deps: OutboxDeps): { deliverSoon(): void } {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    running = true;
    do {
      again = false;
      await deliverOutbox(deps).catch((err: Error) =>
        deps.log.warn({ err: err.message }, 'outbox delivery failed; it is tried again later'),
      );
    } while (again);
    running = false;
  };
  return {
    deliverSoon() {
      if (running) again = true;
      else void run();
    },
  };
}

async function stopped(
  deps: OutboxDeps,
  err: Error,
  delivered: number,
): Promise<{ delivered: number; pending: number }> {
  const { rows } = await deps.db.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM slack_outbox WHERE sent_at IS NULL',
  );
  const pending = Number(rows[0]?.n ?? 0);
  deps.log.debug({ err: err.message, delivered, pending }, 'Slack is still unreachable; messages wait in the outbox');
  return { delivered, pending };
}
