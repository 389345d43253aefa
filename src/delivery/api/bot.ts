// The API as a bot process serves it: the command tables on the same services as Slack's, lookups answered in the
// response, and what an API call changed told in Slack through the outbox.
import type { ChatPort } from '../../adapters/slack/port.js';
import type { DispatchDeps } from '../commands/dispatch.js';
import { drCommand, type TokenIssuer } from '../commands/dr.js';
import { incidentCommand } from '../commands/incident.js';
import type { FileConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import type { IncidentNotifier } from '../../domain/incidents/notifier.js';
import type { IncidentService } from '../../domain/incidents/service.js';
import type { StatusPageService } from '../../domain/incidents/statuspage.js';
import { soleOpenIncident } from '../../domain/incidents/store.js';
import type { Logger } from '../../shared/log.js';
import type { QueryDeps } from '../../domain/recovery/queries.js';
import type { RecoveryService } from '../../domain/recovery/service.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import { code, md, mention, rebuilt, type MrkdwnText } from '../slack/blocks.js';
import { createOutboxCourier, queueForSlack } from '../slack/outbox.js';
import { createInProcessAnswerer } from '../slack/recovery-answers.js';
import { createApi, type Api, type ApiNote } from './routes.js';
import { createToken, revokeTokens } from '../../domain/access/tokens.js';

/** `/dr token` and `/dr token revoke`, on Lifeline's database. */
export function tokenIssuer(db: Db): TokenIssuer {
  return {
    create: (userId) => createToken(db, { userId, via: 'slack' }),
    revokeAll: (userId) => revokeTokens(db, userId),
  };
}

export interface BotApiDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly chat: ChatPort;
  readonly notifier: IncidentNotifier;
  readonly incidents: IncidentService;
  readonly statusPage: StatusPageService;
  readonly recovery: RecoveryService;
  readonly runbooks: RunbookService;
  readonly tokens: TokenIssuer;
  readonly dispatch: DispatchDeps;
  readonly lookups: QueryDeps;
  readonly log: Logger;
}

export function createBotApi(deps: BotApiDeps): Api {
  const { db, file, log } = deps;
  const emergency = file.slack.emergency_channel;
  // The grace is the old CLI's: a card younger than that may still be being posted by another bot.
  const courier = createOutboxCourier({
    db,
    chat: deps.chat,
    notifier: deps.notifier,
    log,
    cardGraceMs: 5_000,
    approvers: (job) => deps.recovery.approversFor(job),
  });
  // Told as the CLI's notes always were: in the thread of the incident it acted on (or of the one open incident),
  // else in the emergency channel.
  const note = async ({ userId, what, reply }: ApiNote) => {
    const ran = md`${mention(userId)} ran ${code(what)}`;
    const text = md`:computer: Through the Lifeline API (\`lifeline\` CLI), ${ran}: ${rebuilt(reply.text)}`;
    const incident = reply.incident ?? (await soleOpenIncident(db));
    // Redaction only puts "[redacted]" in place of secrets, so the text stays the mrkdwn it was built as.
    await queueForSlack(db, { incident, channel: emergency, text: deps.dispatch.redact(text.text) as MrkdwnText });
  };
  const answerNow = createInProcessAnswerer(deps.lookups);
  return createApi({
    db,
    tables: {
      '/incident': incidentCommand({ incidents: deps.incidents, statusPage: deps.statusPage, file }),
      '/dr': drCommand({
        db,
        file,
        recovery: deps.recovery,
        tokens: deps.tokens,
        query: answerNow,
        runbooks: deps.runbooks,
      }),
    },
    recovery: deps.recovery,
    runbooks: deps.runbooks,
    dispatch: deps.dispatch,
    emergencyChannel: emergency,
    note,
    deliverOutbox: () => courier.deliverSoon(),
    log,
  });
}
