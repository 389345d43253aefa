// Answers to the read-only /dr lookups, run on a worker and delivered to the sender's response_url (logs go to a
// thread in the channel, since they are meant to be read together).
import type { ChatPort } from '../adapters/chat.js';
import { backupCatalogue, environmentStatus, listBackups, recentLogs, type QueryDeps, type QueryRequest } from '../recovery/queries.js';
import { mention } from './blocks.js';
import { logMessages, renderBackupCatalogue, renderBackupListing, renderStatus } from './recovery-replies.js';

export function createQueryAnswerer(deps: QueryDeps, chat: ChatPort): (request: QueryRequest) => Promise<void> {
  return async (request) => {
    try {
      await answer(deps, chat, request);
    } catch (err) {
      await chat.respond(request.responseUrl, { text: `:x: That lookup failed: ${(err as Error).message}` });
    }
  };
}

async function answer(deps: QueryDeps, chat: ChatPort, request: QueryRequest): Promise<void> {
  switch (request.kind) {
    case 'restore-list':
      return chat.respond(request.responseUrl, renderBackupListing(await listBackups(deps, request.env)));
    case 'backups':
      return chat.respond(request.responseUrl, renderBackupCatalogue(await backupCatalogue(deps, request.env)));
    case 'status': {
      const envs = request.env ? [request.env] : Object.keys(deps.file.environments);
      return chat.respond(request.responseUrl, renderStatus(await Promise.all(envs.map((env) => environmentStatus(deps, env)))));
    }
    case 'logs': {
      const events = await recentLogs(deps, request);
      const what = `${request.env} ${request.service}, last ${Math.round(request.sinceMs / 60_000)} min${request.filter ? `, filter "${request.filter}"` : ''}`;
      if (events.length === 0) return chat.respond(request.responseUrl, { text: `No log lines for ${what}.` });
      const parent = await chat.post(request.channel, { text: `:scroll: Logs of ${what}: ${events.length} lines (asked by ${mention(request.user)})` });
      for (const message of logMessages(events)) await chat.post(parent.channel, message, parent.ts);
      return chat.respond(request.responseUrl, { text: `Posted ${events.length} log lines in a thread.` });
    }
  }
}
