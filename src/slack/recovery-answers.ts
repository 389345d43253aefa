// Answers to the read-only /dr lookups. In Slack they run on a worker and are delivered to the sender's response_url
// (logs go to a thread in the channel, since they are meant to be read together); through the API they are answered
// in the response itself, in the same words.
import type { ChatPort } from '../adapters/chat.js';
import type { Reply } from '../commands/registry.js';
import {
  backupCatalogue,
  environmentStatus,
  listBackups,
  recentLogs,
  type QueryDeps,
  type QueryRequest,
  type QueryWhat,
} from '../recovery/queries.js';
import { mention } from './blocks.js';
import { logMessages, renderBackupCatalogue, renderBackupListing, renderStatus } from './recovery-replies.js';

function lookupFailed(err: unknown): string {
  return `:x: That lookup failed: ${(err as Error).message}`;
}

/** The worker's answerer for Slack: replies at the request's response_url. */
export function createQueryAnswerer(deps: QueryDeps, chat: ChatPort): (request: QueryRequest) => Promise<void> {
  return async (request) => {
    try {
      await answerInSlack(deps, chat, request);
    } catch (err) {
      await chat.respond(request.responseUrl, { text: lookupFailed(err) });
    }
  };
}

/** The API's answerer: the answer is the reply (logs included, as code blocks), with nothing posted in Slack. */
export function createInProcessAnswerer(deps: QueryDeps): (request: QueryWhat) => Promise<Reply> {
  return async (request) => {
    try {
      return await answer(deps, request);
    } catch (err) {
      return { text: lookupFailed(err), failure: { kind: 'error' } };
    }
  };
}

async function answer(deps: QueryDeps, request: QueryWhat): Promise<Reply> {
  switch (request.kind) {
    case 'restore-list':
      return renderBackupListing(await listBackups(deps, request.env));
    case 'backups':
      return renderBackupCatalogue(await backupCatalogue(deps, request.env));
    case 'status': {
      const envs = request.env ? [request.env] : Object.keys(deps.file.environments);
      return renderStatus(await Promise.all(envs.map((env) => environmentStatus(deps, env))));
    }
    case 'logs': {
      const events = await recentLogs(deps, request);
      if (events.length === 0) return { text: `No log lines for ${logsWhat(request)}.` };
      const text = [
        `:scroll: Logs of ${logsWhat(request)}: ${events.length} lines`,
        ...logMessages(events).map((m) => m.text),
      ].join('\n');
      return { text };
    }
  }
}

function logsWhat(request: Extract<QueryWhat, { kind: 'logs' }>): string {
  const filter = request.filter ? `, filter "${request.filter}"` : '';
  return `${request.env} ${request.service}, last ${Math.round(request.sinceMs / 60_000)} min${filter}`;
}

async function answerInSlack(deps: QueryDeps, chat: ChatPort, request: QueryRequest): Promise<void> {
  if (request.kind !== 'logs') return chat.respond(request.responseUrl, await answer(deps, request));
  const events = await recentLogs(deps, request);
  if (events.length === 0) return chat.respond(request.responseUrl, { text: `No log lines for ${logsWhat(request)}.` });
  const parent = await chat.post(request.channel, {
    text: `:scroll: Logs of ${logsWhat(request)}: ${events.length} lines (asked by ${mention(request.user)})`,
  });
  for (const message of logMessages(events)) await chat.post(parent.channel, message, parent.ts);
  return chat.respond(request.responseUrl, { text: `Posted ${events.length} log lines in a thread.` });
}
