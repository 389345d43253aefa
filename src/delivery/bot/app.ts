// Bolt wiring: slash commands and button clicks in, replies out. Thin: ack first, then hand over to a service.
import bolt from '@slack/bolt';
import type { BlockAction, ButtonAction, Logger as BoltLogger } from '@slack/bolt';
import type { ChatPort } from '../../adapters/slack/port.js';
import { planCommand, runHandled, type DispatchDeps } from '../commands/dispatch.js';
import type { SlashCommand } from '../commands/registry.js';
import type { Config } from '../../shared/config.js';
import { UserError } from '../../shared/errors.js';
import type { Route } from '../http/health.js';
import type { IncidentService } from '../../domain/incidents/service.js';
import type { RecoveryService } from '../../domain/recovery/service.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import { RUN_ACTIONS } from '../slack/runbook-replies.js';
import { APPROVE_ACTION, REJECT_ACTION } from '../slack/recovery-replies.js';
import type { Logger } from '../../shared/log.js';
import { claimRequest } from '../requests.js';
import { unescapeSlackText } from '../slack/blocks.js';
import { ACK_ACTION, RESOLVE_ACTION } from '../slack/incident-card.js';
import type { Reply } from '../slack/reply.js';
import { postToResponseUrl } from '../slack/response-url.js';

const { App, LogLevel } = bolt;

/** Slack keeps a response_url open for 30 minutes; a reply that takes this long has failed. */
const RESPOND_TIMEOUT_MS = 8_000;

export interface SlackAppDeps extends DispatchDeps {
  readonly config: Config;
  readonly commands: readonly SlashCommand[];
  readonly incidents: IncidentService;
  readonly recovery: RecoveryService;
  readonly runbooks: RunbookService;
  readonly chat: ChatPort;
  readonly routes: readonly Route[];
}

export function createSlackApp(deps: SlackAppDeps): InstanceType<typeof App> {
  const { config, log } = deps;
  const socketMode = config.slack.appToken !== undefined;
  const common = {
    token: config.slack.botToken,
    logger: boltLogger(log),
    logLevel: LogLevel.WARN,
    // In Socket Mode Bolt hands these options to the socket client too, whose own retry policy for
    // apps.connections.open (many patient retries) is what keeps it reconnecting through a Slack outage.
    // Our time-critical posts go through src/adapters/slack/client.ts with their own bounded policy either way.
    clientOptions: {
      slackApiUrl: config.slack.apiUrl,
      ...(socketMode ? {} : { timeout: 8_000, retryConfig: { retries: 2 } }),
    },
    customRoutes: [...deps.routes],
    // Lifeline keeps no conversation state in Bolt; its store would be one more middleware on every request.
    convoStore: false as const,
  };
  const app = socketMode
    ? new App({ ...common, socketMode: true, appToken: config.slack.appToken, installerOptions: { port: config.port } })
    : new App({ ...common, signingSecret: config.slack.signingSecret ?? '', port: config.port });

  // One listener per kind of request, not one per command or button: Bolt runs every listener's middleware for
  // every request, so each extra listener was paid on each ack.
  const byName = new Map(deps.commands.map((command) => [command.name, command]));
  app.command(oneOf(byName.keys()), async ({ command: payload, ack }) => {
    const receivedAt = new Date();
    const command = byName.get(payload.command);
    if (!command) return;
    const plan = await planCommand(
      command,
      {
        text: unescapeSlackText(payload.text),
        userId: payload.user_id,
        channelId: payload.channel_id,
        threadTs: (payload as { thread_ts?: string }).thread_ts,
        requestKey: payload.trigger_id,
        responseUrl: payload.response_url,
        receivedAt,
      },
      deps,
    );
    if ('ackWith' in plan) {
      await ack(ephemeral(plan.ackWith));
      return;
    }
    await ack();
    const reply = await plan.later();
    if (!reply) return;
    const message = { ...ephemeral(reply), replace_original: false };
    await postToResponseUrl(payload.response_url, message, RESPOND_TIMEOUT_MS).catch((err: Error) =>
      log.warn({ err: err.message, command: command.name }, 'reply to response_url failed'),
    );
  });

  // Every button carries the number of what it acts on; identity comes only from the signed payload's user.
  const buttons: Record<string, (number: number, user: string) => Promise<unknown>> = {
    [ACK_ACTION]: (number, user) => deps.incidents.acknowledge({ number }, user),
    [RESOLVE_ACTION]: (number, user) => deps.incidents.resolve({ number }, user, undefined),
    [APPROVE_ACTION]: (number, user) => deps.recovery.approve(number, user),
    [REJECT_ACTION]: (number, user) => deps.recovery.reject(number, user),
    [RUN_ACTIONS.approve]: (number, user) => deps.runbooks.approve(number, user),
    [RUN_ACTIONS.reject]: (number, user) => deps.runbooks.reject(number, user),
    [RUN_ACTIONS.done]: (number, user) => deps.runbooks.act(number, user, 'done'),
    [RUN_ACTIONS.retry]: (number, user) => deps.runbooks.act(number, user, 'retry'),
    [RUN_ACTIONS.skip]: (number, user) => deps.runbooks.act(number, user, 'skip'),
    [RUN_ACTIONS.abort]: (number, user) => deps.runbooks.act(number, user, 'abort'),
  };
  const buttonIds = new Map(Object.entries(buttons));
  app.action<BlockAction<ButtonAction>>({ action_id: oneOf(buttonIds.keys()) }, async ({ ack, body, action }) => {
    await ack();
    const actionId = action.action_id;
    const perform = buttonIds.get(actionId);
    if (!perform) return;
    const user = body.user.id;
    const channel = body.channel?.id ?? config.file.slack.emergency_channel;
    const reply = await runHandled(deps, { command: actionId, user, channel }, async () => {
      if (!(await claimRequest(deps.db, `action:${body.trigger_id}`))) return undefined;
      const number = /^[1-9][0-9]{0,8}$/.test(action.value ?? '') ? Number(action.value) : undefined;
      if (number === undefined) throw new UserError('bad_command', 'This button does not name what it acts on.');
      await perform(number, user);
      log.info({ number, user, action: actionId }, 'button handled');
      return undefined;
    });
    if (reply) {
      await deps.chat
        .postEphemeral(channel, user, reply)
        .catch((err: Error) => log.warn({ err: err.message }, 'ephemeral reply failed'));
    }
  });

  app.error(async (err) => {
    log.error({ err: err.message, code: (err as { code?: string }).code }, 'Bolt error');
  });
  return app;
}

/** Matches exactly one of `names`. */
function oneOf(names: Iterable<string>): RegExp {
  const escaped = [...names].map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^(?:${escaped.join('|')})$`);
}

function ephemeral(reply: Reply) {
  return {
    response_type: 'ephemeral' as const,
    text: reply.text,
    ...(reply.blocks ? { blocks: [...reply.blocks] } : {}),
  };
}

function boltLogger(log: Logger): BoltLogger {
  const child = log.child({ component: 'bolt' });
  return {
    // Bolt logs at debug several times per request: only build the line when it would be written.
    debug: (...msg: unknown[]) => {
      if (child.isLevelEnabled('debug')) child.debug(msg.map(String).join(' '));
    },
    info: (...msg: unknown[]) => child.info(msg.map(String).join(' ')),
    warn: (...msg: unknown[]) => child.warn(msg.map(String).join(' ')),
    error: (...msg: unknown[]) => child.error(msg.map(String).join(' ')),
    setLevel: () => undefined,
    getLevel: () => LogLevel.WARN,
    setName: () => undefined,
  };
}
