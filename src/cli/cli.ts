// `lifeline …`: the slash commands from a terminal, for when Slack is down (chat is a single point of failure in a
// disaster). The same command tables, services, rules and refusal words as in Slack, against the same PostgreSQL,
// Redis and audit trail; the identity is the operating-system user, mapped to a Slack user by `cli_users`. What it
// does is told in the incident's thread (or the emergency channel) now, or when Slack answers again.
import { Redis } from 'ioredis';
import { createRdsPort } from '../adapters/aws-rds.js';
import { createEcsPort } from '../adapters/aws-ecs.js';
import { createLogsPort } from '../adapters/aws-logs.js';
import { createSlackChat } from '../adapters/chat.js';
import { createBackupStore } from '../backups/stores.js';
import { drCommand, type DrDeps } from '../commands/dr.js';
import { incidentCommand } from '../commands/incident.js';
import { execute, type CommandContext, type SlashCommand } from '../commands/registry.js';
import type { Config } from '../config.js';
import { createCommandServices } from '../core.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { UserError } from '../errors.js';
import { parseIncidentId } from '../incidents/model.js';
import { soleOpenIncident } from '../incidents/store.js';
import { createLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { jobId, parseJobId } from '../recovery/model.js';
import { createQueryAnswerer } from '../slack/recovery-answers.js';
import { code, md, mention, rebuilt, type MrkdwnText } from '../slack/blocks.js';
import { deliverOutbox, queueForSlack } from '../slack/outbox.js';
import { within } from '../timeout.js';
import { followJob } from './follow.js';
import { terminalChat, toTerminal } from './terminal.js';

/** Exit codes: the command did what it was asked; Lifeline refused it (bad command, not permitted); it failed. */
export const EXIT = { ok: 0, failed: 1, refused: 2 } as const;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface CliOptions {
  /** The operating-system user running the CLI. */
  readonly osUser: string;
  /** Ctrl-C: stop following a job (it goes on). */
  readonly signal?: AbortSignal;
}

/** Slack is what is down when the CLI matters most: fail fast rather than retry for half a minute per message. */
const SLACK_TIMEOUT_MS = 3_000;
/** A card younger than this may be being posted by whoever declared the incident (see deliverOutbox). */
const CARD_GRACE_MS = 5_000;

export const USAGE = [
  'Usage: lifeline [--no-wait] <command>',
  '  lifeline incident <subcommand …>   as /incident in Slack (lifeline incident help)',
  '  lifeline dr <subcommand …>         as /dr in Slack (lifeline dr help)',
  '  lifeline approve JOB-<n>           approve a recovery job (approvers only, never your own)',
  '  lifeline reject JOB-<n>            reject it (the requester or an approver)',
  '--no-wait: do not follow a job to its end.',
].join('\n');

export async function runCli(config: Config, argv: readonly string[], io: CliIo, options: CliOptions): Promise<number> {
  const noWait = argv.includes('--no-wait');
  const [command, ...rest] = argv.filter((a) => a !== '--no-wait');
  // (No command and `help` are answered by main, before any configuration is read.)
  if (command === undefined || !['incident', 'dr', 'approve', 'reject'].includes(command)) {
    io.err(`lifeline: unknown command "${command ?? ''}".\n${USAGE}`);
    return EXIT.refused;
  }
  const userId = config.file.cli_users[options.osUser];
  if (!userId) {
    io.err(
      `lifeline: the operating-system user "${options.osUser}" is not in cli_users of ${config.configPath}; ` +
        `add "${options.osUser}: <your Slack user ID>" there to act as yourself. Nothing was done.`,
    );
    return EXIT.refused;
  }

  // The terminal is for the answer: what goes wrong is said in words below, not as log lines.
  const log = createLogger('fatal', config.secrets, process.stderr);
  const db = createPool(config.databaseUrl, log);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 3_000, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    try {
      await within(Promise.all([db.query('SELECT 1'), redis.connect()]), 10_000);
    } catch (err) {
      io.err(`lifeline: cannot reach Lifeline's PostgreSQL or Redis: ${(err as Error).message}`);
      return EXIT.failed;
    }
    await migrate(db);
    const chat = createSlackChat({ token: config.slack.botToken, apiUrl: config.slack.apiUrl, log, timeoutMs: SLACK_TIMEOUT_MS, retries: 0 });
    const core = createCommandServices(config, { db, redis, chat, metrics: createMetrics(), log });
    try {
      const emergency = config.file.slack.emergency_channel;
      const ctx: CommandContext = { userId, channelId: emergency };
      const answer = createQueryAnswerer(
        { db, file: config.file, storeFor: createBackupStore, rds: createRdsPort(), ecs: createEcsPort(), logs: createLogsPort() },
        terminalChat((text) => io.out(text)),
      );
      const query: DrDeps['query'] = (request, at) => answer({ ...request, responseUrl: 'terminal', user: at.userId, channel: at.channelId });
      const tables: Record<string, SlashCommand> = {
        incident: incidentCommand(core.incidents, config.file),
        dr: drCommand({ db, file: config.file, recovery: core.recovery, query }),
      };
      const text = rest.join(' ');
      let reply: string;
      /** The reply in Slack's own mrkdwn, for the note in Slack. */
      let slackReply: MrkdwnText;
      let follow: number | undefined;
      try {
        if (command === 'approve' || command === 'reject') {
          const number = parseJobId(rest[0] ?? '');
          if (number === undefined || rest.length > 1) throw new UserError('bad_command', `Name the job, for example \`lifeline ${command} JOB-7\`.`);
          const job = command === 'approve' ? await core.recovery.approve(number, userId) : await core.recovery.reject(number, userId);
          reply = `${jobId(job.number)} ${command === 'approve' ? 'approved' : 'rejected'}.`;
          slackReply = md`${reply}`.text;
          if (command === 'approve') follow = job.number;
        } else {
          const table = tables[command]!;
          const answered = await execute(table, text, ctx);
          slackReply = answered?.text ?? md``.text;
          reply = toTerminal(slackReply);
          const requested = /^JOB-(\d+): .* requested\./.exec(reply);
          if (requested) follow = Number(requested[1]);
        }
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        io.err(toTerminal(err.usage ? `${err.message}\n${err.usage}` : err.message));
        return EXIT.refused;
      }
      if (reply) io.out(reply);
      await tellSlack(db, emergency, userId, `${command} ${text}`.trim(), slackReply);
      const backlog = await deliverOutbox({ db, chat, notifier: core.notifier, log, cardGraceMs: CARD_GRACE_MS }).catch(() => undefined);
      if (backlog && backlog.pending > 0) {
        const waiting = backlog.pending === 1 ? '1 message waits' : `${backlog.pending} messages wait`;
        io.err(`Slack is unreachable: ${waiting} and will be posted when it answers (by the workers, or your next lifeline command).`);
      }
      if (follow === undefined || noWait) return EXIT.ok;
      const ended = await followJob(db, follow, (line) => io.out(line), { signal: options.signal });
      return ended === undefined || ended === 'succeeded' ? EXIT.ok : EXIT.failed;
    } finally {
      await core.close();
    }
  } catch (err) {
    io.err(`lifeline: failed: ${(err as Error).message}`);
    return EXIT.failed;
  } finally {
    await Promise.allSettled([within(db.end(), 2_000), within(redis.quit(), 1_000)]);
    redis.disconnect();
  }
}

/**
 * What was done from the terminal goes on the record in Slack too: in the thread of the incident it concerns (or of
 * the one open incident), else in the emergency channel. Read-only commands are not announced.
 */
async function tellSlack(db: Parameters<typeof queueForSlack>[0], emergency: string, userId: string, what: string, reply: MrkdwnText): Promise<void> {
  if (/^(incident|dr) (help|list|status|jobs|audit|backups|logs|postmortem)\b/.test(what) || /^dr restore \S+ list\b/.test(what)) return;
  // The reply names the incident the command acted on (a title may name another one).
  const named = /\bINC-(\d+)\b/i.exec(reply) ?? /\bINC-(\d+)\b/i.exec(what);
  const incident = named ? parseIncidentId(named[0]) : await soleOpenIncident(db);
  const text = md`:computer: From the \`lifeline\` CLI, ${mention(userId)} ran ${code(what)}: ${rebuilt(reply)}`;
  await queueForSlack(db, { incident, channel: emergency, text: text.text });
}
