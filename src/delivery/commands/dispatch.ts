// The one error handler for commands and clicks: user mistakes become a reply to the user alone; anything else gets
// an error ID that is both logged and shown.
import type { Db } from '../../shared/db/pool.js';
import { newErrorId, UserError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import { claimRequest } from '../requests.js';
import { channelLink, joinMd, line, md, saidText, type Mrkdwn } from '../slack/blocks.js';
import { helpText, prepare, runPrepared } from './registry.js';
import type { CommandContext, Effect, Prepared, SlashCommand } from './registry.js';
import type { Reply } from '../slack/reply.js';

export interface DispatchDeps {
  readonly db: Db;
  readonly allowedChannels: readonly string[];
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly redact: (text: string) => string;
}

export interface CommandRequest extends CommandContext {
  readonly text: string;
  /** Slack's trigger_id: the same on a retry, so a repeat is recognised. */
  readonly requestKey: string;
}

/**
 * What to do with a slash command. A reply that needs no I/O (a refusal of a malformed command, help) rides on the
 * ack itself: the sender sees it at once and no second HTTP request is made. Anything else is acked empty first and
 * answered by `later()`, which is undefined-valued for a repeat of a request already handled; `effect` says whether
 * it may change something.
 */
export type CommandPlan =
  { readonly ackWith: Reply } | { readonly later: () => Promise<Reply | undefined>; readonly effect: Effect };

export async function planCommand(
  command: SlashCommand,
  request: CommandRequest,
  deps: DispatchDeps,
): Promise<CommandPlan> {
  const about = { command: command.name, user: request.userId, channel: request.channelId };
  if (!deps.allowedChannels.includes(request.channelId)) {
    const channels = joinMd(deps.allowedChannels.map(channelLink), ' or ');
    const message = 'Lifeline does not take commands in this channel.';
    const error = new UserError('channel_not_allowed', message, helpText(command));
    return { ackWith: refusal(deps, about, error, md`${error.message} Use ${channels}.`) };
  }
  let prepared: Prepared;
  try {
    prepared = prepare(command, request.text);
  } catch (err) {
    return { ackWith: failure(deps, about, err) };
  }
  if (prepared.kind === 'refused') return { ackWith: refusal(deps, about, prepared.error) };
  if (prepared.effect === 'local') {
    const reply = await runHandled(deps, about, () => runPrepared(prepared, request));
    if (reply) return { ackWith: reply };
  }
  return {
    effect: prepared.effect,
    later: () =>
      runHandled(deps, about, async () => {
        if (prepared.effect === 'write' && !(await claimRequest(deps.db, `command:${request.requestKey}`))) {
          deps.log.info(about, 'repeated request ignored');
          return undefined;
        }
        return runPrepared(prepared, request);
      }),
  };
}

/** Runs work and turns every failure into a reply; used for commands and button clicks alike. */
export async function runHandled(
  deps: Pick<DispatchDeps, 'log' | 'metrics' | 'redact'>,
  about: { command: string; user: string; channel: string },
  work: () => Promise<Reply | undefined>,
): Promise<Reply | undefined> {
  try {
    return await work();
  } catch (err) {
    return failure(deps, about, err);
  }
}

/** A refusal for the user alone; anything else becomes an error ID that is both logged and shown. */
function failure(
  deps: Pick<DispatchDeps, 'log' | 'metrics' | 'redact'>,
  about: { command: string; user: string; channel: string },
  err: unknown,
): Reply {
  if (err instanceof UserError) return refusal(deps, about, err);
  const errorId = newErrorId();
  deps.log.error({ ...about, errorId, err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
  const advice = md`what was already recorded stands, so check \`/incident status\` before retrying`;
  return {
    ...line(md`:x: Lifeline hit an unexpected error (${errorId}). It is logged under that ID; ${advice}.`),
    failure: { kind: 'error' },
  };
}

/**
 * A refusal's message is Lifeline's own sentence, often quoting what the user typed (escaped here); `shown` is a
 * message that needs markup of its own (channel links). The usage is plain text: its `<env>` is shown as typed.
 */
function refusal(
  deps: Pick<DispatchDeps, 'log' | 'metrics' | 'redact'>,
  about: { command: string; user: string; channel: string },
  err: UserError,
  shown: Mrkdwn = refusalText(err, deps.redact),
): Reply {
  deps.metrics.commandsRefused.inc({ command: about.command, code: err.code });
  deps.log.info({ ...about, code: err.code, reason: err.message }, 'request refused');
  return {
    ...line(err.usage ? md`:warning: ${shown}\n${deps.redact(err.usage)}` : md`:warning: ${shown}`),
    failure: { kind: 'refused', code: err.code },
  };
}

function refusalText(err: UserError, redact: (text: string) => string): Mrkdwn {
  const parts = err.said.map((part) => (typeof part === 'string' ? redact(part) : part));
  return saidText(parts);
}
