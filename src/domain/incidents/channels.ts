// Incident channels, an incident follower. With `incidents.channels.enabled`, a declaration
// owes the incident a Slack channel `#<prefix>-<n>-<slug>` (a row in incident_channels) and hands it to a durable
// job: the job creates the channel (a clash gets `-2`, `-3`...), invites the declarer and the users of every role
// paged so far, sets the topic, posts the card there and pins it, and the emergency card then links the channel.
// A role paged later is invited when its step pages. Acknowledging sets the topic; resolving too, and owes an archive
// `archive_after_hours` later: a delayed job, its due time in PostgreSQL for the reconciler. Slack refusing the
// channel is said in the incident's thread; none of this ever runs before the ladder is scheduled.
import type { ChannelPort, PostedMessage } from '../../adapters/slack/port.js';
import { SlackRefusal } from '../../adapters/slack/port.js';
import type { ChannelsConfig, FileConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import { PermanentError, TransientError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { SYSTEM_ACTOR } from '../access/permissions.js';
import { channelName } from './channel-name.js';
import * as owed from './channels-store.js';
import type { IncidentFollower } from './followers.js';
import { incidentId, incidentState, type Incident } from './model.js';
import type { IncidentNotifier } from './notifier.js';
import * as store from './store.js';

/** How many names a clash may try (`-2` ... `-20`) before Lifeline gives up. */
const NAME_TRIES = 20;
/** Advisory lock namespace for one incident's channel work (any constant; the same in every replica). */
const CHANNEL_LOCK = 4_711_012;

export type ChannelJobKind = 'create' | 'topic' | 'archive';

/** What sends a channel job: the real one is a BullMQ queue (src/delivery/jobs/channels-queue.ts). */
export interface ChannelTriggers {
  /**
   * Asks for `kind` on the incident's channel, after `delayMs`; asking twice with the same `key` (default: the kind)
   * is one job.
   */
  trigger(incident: number, kind: ChannelJobKind, options?: { delayMs?: number; key?: string }): Promise<void>;
}

export interface ChannelDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly slack: ChannelPort;
  readonly triggers: ChannelTriggers;
  readonly notifier: IncidentNotifier;
  /** Posts the incident's card in its channel (delivery renders it). */
  readonly postCard: (incident: Incident, channel: string) => Promise<PostedMessage>;
  /** Brings the pinned copy of the card up to date (state, severity, buttons). */
  readonly refreshCard: (incident: Incident, card: PostedMessage) => Promise<void>;
  readonly log: Logger;
}

export class ChannelService implements IncidentFollower {
  readonly name = 'incident channel';

  constructor(private readonly deps: ChannelDeps) {}

  private get config(): ChannelsConfig | undefined {
    const channels = this.deps.file.incidents?.channels;
    return channels?.enabled ? channels : undefined;
  }

  // ---- the follower ---------------------------------------------------------------------------------------------

  async declared(incident: Incident): Promise<void> {
    if (!this.config) return;
    // A second run finds the row: its job exists already, or the reconciler gives it one.
    if (await owed.addChannel(this.deps.db, incident.number))
      await this.deps.triggers.trigger(incident.number, 'create');
  }

  async updated(): Promise<void> {
    // Updates go in the emergency card's thread; the channel is where people talk.
  }

  /**
   * The topic and the pinned card say so (a job of its own: the topic job reads the incident's state when it runs,
   * and brings the pinned card up to date too).
   */
  async acknowledged(incident: Incident): Promise<void> {
    if (!this.config) return;
    await this.deps.triggers.trigger(incident.number, 'topic', { key: 'topic-acknowledged' });
  }

  async severityChanged(incident: Incident): Promise<void> {
    if (!this.config) return;
    await this.deps.triggers.trigger(incident.number, 'topic', { key: `topic-${incident.severity}` });
  }

  async resolved(incident: Incident): Promise<void> {
    const config = this.config;
    if (!config) return;
    const due = await owed.scheduleArchive(this.deps.db, incident.number, config.archive_after_hours);
    if (!due) return;
    await this.deps.triggers.trigger(incident.number, 'topic', { key: 'topic-resolved' });
    await this.deps.triggers.trigger(incident.number, 'archive', { delayMs: due.getTime() - Date.now() });
  }

  /** A step paged `users`: they join the channel if there is one (the create job invites those paged before it). */
  async paged(incident: number, users: readonly string[]): Promise<void> {
    if (!this.config || users.length === 0) return;
    const row = await owed.getChannel(this.deps.db, incident);
    if (!row?.channelId || row.archived) return;
    await this.deps.slack.invite(row.channelId, users);
  }

  // ---- the jobs -------------------------------------------------------------------------------------------------

  /**
   * Runs one job for the incident's channel, one at a time per incident (an advisory lock), each step recorded as it
   * is done, so a retried job or a second replica picks up where the last stopped. Throws TransientError to be
   * retried; on `finalAttempt`, gives up on the channel and says so.
   */
  async run(incident: number, kind: ChannelJobKind, options: { finalAttempt: boolean }): Promise<void> {
    const client = await this.deps.db.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [CHANNEL_LOCK, incident]);
      if (kind === 'create') await this.create(incident, options.finalAttempt);
      else if (kind === 'topic') await this.topic(incident);
      else await this.archive(incident);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [CHANNEL_LOCK, incident]).catch(() => undefined);
      client.release();
    }
  }

  /** Gives every owed set-up and archive its job again (after Redis lost them); answers how many were owed. */
  async reconcile(): Promise<number> {
    if (!this.config) return 0;
    const rows = await owed.channelsOwed(this.deps.db);
    for (const row of rows) {
      if (!row.setUp) await this.deps.triggers.trigger(row.incident, 'create');
      else if (row.archiveDueAt)
        await this.deps.triggers.trigger(row.incident, 'archive', { delayMs: row.archiveDueAt.getTime() - Date.now() });
    }
    return rows.length;
  }

  private async create(number: number, finalAttempt: boolean): Promise<void> {
    const { db, slack } = this.deps;
    const row = await owed.getChannel(db, number);
    if (!row || row.failed || row.setUp) return;
    let incident = await this.incident(number);
    try {
      let channel = row.channelId;
      if (!channel) {
        channel = await this.createNamed(incident);
        incident = { ...incident, channel };
      }
      const paged = await store.pagesSent(db, number);
      const users = new Set(paged.flatMap((p) => this.deps.file.roles[p.role]?.slack_users ?? []));
      if (incident.declaredBy !== SYSTEM_ACTOR) users.add(incident.declaredBy);
      if (users.size > 0) await this.inviteQuietly(number, channel, [...users]);
      await slack.setTopic(channel, topicOf(incident));
      let cardTs = row.cardTs;
      if (!cardTs) {
        cardTs = (await this.deps.postCard(incident, channel)).ts;
        await owed.saveCardTs(db, number, cardTs);
      }
      await slack.pin({ channel, ts: cardTs });
      await owed.markSetUp(db, number);
    } catch (err) {
      const refused = err instanceof SlackRefusal || err instanceof PermanentError;
      if (!refused && !(err instanceof TransientError)) throw err;
      const giveUp = refused || finalAttempt;
      await owed.markFailed(db, number, err.message, giveUp);
      if (!giveUp) throw err;
      await store.appendEvent(db, number, SYSTEM_ACTOR, 'channel_failed', err.message);
      await this.quietly('Slack thread note', () =>
        this.deps.notifier.threadNote(incident, { kind: 'channel_failed', error: err.message }),
      );
      return;
    }
    await this.quietly('Slack card refresh', () => this.deps.notifier.refresh(incident));
  }

  /** conversations.create with the incident's name, then `-2`, `-3`... while Slack answers name_taken. */
  private async createNamed(incident: Incident): Promise<string> {
    const prefix = this.config?.prefix ?? 'inc';
    for (let attempt = 1; attempt <= NAME_TRIES; attempt++) {
      const name = channelName(prefix, incident.number, incident.title, attempt);
      try {
        const channel = await this.deps.slack.createChannel(name);
        await owed.saveCreated(this.deps.db, incident.number, name, channel);
        await store.appendEvent(this.deps.db, incident.number, SYSTEM_ACTOR, 'channel', `#${name} created`);
        return channel;
      } catch (err) {
        if (!(err instanceof SlackRefusal && err.code === 'name_taken')) throw err;
      }
    }
    throw new SlackRefusal('conversations.create', `name_taken (${NAME_TRIES} names tried)`);
  }

  /** A user Slack will not invite (deactivated, a guest) is logged: the channel is still worth having. */
  private async inviteQuietly(number: number, channel: string, users: readonly string[]): Promise<void> {
    try {
      await this.deps.slack.invite(channel, users);
    } catch (err) {
      if (!(err instanceof SlackRefusal)) throw err;
      this.deps.log.warn({ incident: incidentId(number), err: err.message }, 'channel invite refused');
    }
  }

  private async topic(number: number): Promise<void> {
    const row = await owed.getChannel(this.deps.db, number);
    if (!row?.channelId || row.archived) return;
    const incident = await this.incident(number);
    try {
      await this.deps.slack.setTopic(row.channelId, topicOf(incident));
      if (row.cardTs) await this.deps.refreshCard(incident, { channel: row.channelId, ts: row.cardTs });
    } catch (err) {
      // The topic is a courtesy: a refusal (archived meanwhile) is logged, not retried.
      if (!(err instanceof SlackRefusal)) throw err;
      this.deps.log.warn({ incident: incidentId(number), err: err.message }, 'channel topic not set');
    }
  }

  private async archive(number: number): Promise<void> {
    const row = await owed.getChannel(this.deps.db, number);
    if (!row || row.archived || !row.archiveDueAt) return;
    // A second of leeway for the clocks of PostgreSQL and this process.
    if (row.archiveDueAt.getTime() > Date.now() + 1_000) {
      // Too early (a job added before a restart moved the clock, say): the reconciler adds the delayed one.
      throw new TransientError(`the channel of ${incidentId(number)} is due for archiving later`);
    }
    if (row.failed) return;
    if (!row.channelId || !row.setUp)
      throw new TransientError(`the channel of ${incidentId(number)} is not set up yet`);
    try {
      await this.deps.slack.archive(row.channelId);
    } catch (err) {
      // Someone archived or deleted it by hand: nothing left to do.
      if (!(err instanceof SlackRefusal && err.code === 'channel_not_found')) throw err;
    }
    await owed.markArchived(this.deps.db, number);
    await store.appendEvent(this.deps.db, number, SYSTEM_ACTOR, 'channel', `#${row.name ?? row.channelId} archived`);
  }

  private async incident(number: number): Promise<Incident> {
    const incident = await store.getIncident(this.deps.db, number);
    if (!incident) throw new Error(`incident channel row ${number} names no incident`);
    return incident;
  }

  private async quietly(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, `${what} about the incident channel failed`);
    }
  }
}

/** `SEV1 | investigating | <title>`, then `acknowledged` and `resolved`; Slack's topic limit is 250 characters. */
export function topicOf(incident: Incident): string {
  const state = incidentState(incident);
  const status = state === 'open' ? 'investigating' : state;
  const topic = `${incident.severity.toUpperCase()} | ${status} | ${incident.title}`;
  return [...topic].length > 250 ? `${[...topic].slice(0, 249).join('')}…` : topic;
}
