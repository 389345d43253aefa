// Messages that wait for Slack. When Slack is down (the very case the CLI exists for), what the CLI did and the
// results of jobs are kept here and posted once Slack answers again: by the CLI on its next run and by every
// worker's reconciler. Incidents declared while Slack was down get their card first, so their notes can thread.
import type { ChatPort } from '../adapters/chat.js';
import { inTransaction, type Db } from '../db/pool.js';
import type { IncidentNotifier } from '../incidents/ports.js';
import * as incidents from '../incidents/store.js';
import { incidentId } from '../incidents/model.js';
import type { Logger } from '../log.js';
import { line, rebuilt, type MrkdwnText } from './blocks.js';

export interface OutboxEntry {
  /** The incident whose card thread it belongs in; without one it goes top-level in `channel`. */
  readonly incident?: number | undefined;
  readonly channel?: string | undefined;
  /** Rendered mrkdwn: the outbox keeps what a renderer built, and posts it as it is. */
  readonly text: MrkdwnText;
}

export async function queueForSlack(db: Pick<Db, 'query'>, entry: OutboxEntry): Promise<void> {
  await db.query('INSERT INTO slack_outbox (incident, channel, text) VALUES ($1, $2, $3)', [entry.incident ?? null, entry.channel ?? null, entry.text]);
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
}

/**
 * Posts the cards that are missing and then the waiting messages, oldest first. Stops at the first Slack failure
 * (Slack is still down: the rest keeps its order for the next try). Safe to run from several processes at once:
 * each message is claimed under a row lock and marked sent in the same transaction.
 */
export async function deliverOutbox(deps: OutboxDeps): Promise<{ delivered: number; pending: number }> {
  const { db } = deps;
  const { rows: uncarded } = await db.query<{ number: number }>(
    "SELECT number FROM incidents WHERE card_ts IS NULL AND declared_at < now() - make_interval(secs => $1) ORDER BY number",
    [deps.cardGraceMs / 1000],
  );
  for (const { number } of uncarded) {
    // Under the incident's row lock (another process may be delivering too): one late card, never two.
    const posted = await inTransaction(db, async (tx) => {
      const { rows } = await tx.query('SELECT 1 FROM incidents WHERE number = $1 AND card_ts IS NULL FOR UPDATE SKIP LOCKED', [number]);
      if (rows.length === 0) return true;
      const incident = await incidents.getIncident(tx, number);
      if (!incident) return true;
      const card = await deps.notifier.announce(incident).catch((err: Error) => err);
      if (card instanceof Error) return card;
      await incidents.setCard(tx, number, card.channel, card.ts);
      deps.log.info({ incident: incidentId(number) }, 'incident card posted late (Slack was unreachable at declaration)');
      return true;
    });
    if (posted instanceof Error) return stopped(deps, posted, 0);
  }
  let delivered = 0;
  for (;;) {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string; incident: number | null; channel: string | null; text: string; card_channel: string | null; card_ts: string | null }>(
        `SELECT o.id, o.incident, o.channel, o.text, i.card_channel, i.card_ts
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
      const sent = channel
        ? // Written by queueForSlack, which takes MrkdwnText only.
          await deps.chat.post(channel, line(rebuilt(entry.text as MrkdwnText)), entry.card_ts ?? undefined).then(
            () => undefined,
            (err: Error) => err,
          )
        : new Error(`outbox entry ${entry.id} has nowhere to go`);
      if (sent instanceof Error) {
        await client.query('ROLLBACK');
        return stopped(deps, sent, delivered);
      }
      await client.query('UPDATE slack_outbox SET sent_at = clock_timestamp() WHERE id = $1', [entry.id]);
      await client.query('COMMIT');
      delivered += 1;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

async function stopped(deps: OutboxDeps, err: Error, delivered: number): Promise<{ delivered: number; pending: number }> {
  const { rows } = await deps.db.query<{ n: string }>('SELECT count(*)::text AS n FROM slack_outbox WHERE sent_at IS NULL');
  const pending = Number(rows[0]?.n ?? 0);
  deps.log.debug({ err: err.message, delivered, pending }, 'Slack is still unreachable; messages wait in the outbox');
  return { delivered, pending };
}
