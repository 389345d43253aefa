// The one error handler for commands and clicks: user mistakes become a reply to the user alone; anything else gets
// an error ID that is both logged and shown.
import type { Db } from '../db/pool.js';
import { newErrorId, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { claimRequest } from '../requests.js';
import { execute, helpText, type CommandContext, type Reply, type SlashCommand } from './registry.js';

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

/** Returns the reply for the sender, or undefined for a repeat of a request already handled. */
export async function dispatchCommand(command: SlashCommand, request: CommandRequest, deps: DispatchDeps): Promise<Reply | undefined> {
  return runHandled(deps, { command: command.name, user: request.userId, channel: request.channelId }, async () => {
    if (!deps.allowedChannels.includes(request.channelId)) {
      throw new UserError(
        'channel_not_allowed',
        `Lifeline does not take commands in this channel. Use ${deps.allowedChannels.map((c) => `<#${c}>`).join(' or ')}.`,
        helpText(command),
      );
    }
    if (!(await claimRequest(deps.db, `command:${request.requestKey}`))) {
      deps.log.info({ command: command.name, user: request.userId }, 'repeated request ignored');
      return undefined;
    }
    return execute(command, request.text, request);
  });
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
    if (err instanceof UserError) {
      deps.metrics.commandsRefused.inc({ command: about.command, code: err.code });
      deps.log.info({ ...about, code: err.code, reason: err.message }, 'request refused');
      const text = deps.redact(err.usage ? `:warning: ${err.message}\n${err.usage}` : `:warning: ${err.message}`);
      return { text };
    }
    const errorId = newErrorId();
    deps.log.error({ ...about, errorId, err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
    return {
      text: `:x: Lifeline hit an unexpected error (${errorId}). It is logged under that ID; what was already recorded stands, so check \`/incident status\` before retrying.`,
    };
  }
}
