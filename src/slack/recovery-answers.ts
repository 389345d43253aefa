// Answers to the read-only /dr lookups, run on a worker and delivered to the sender's response_url (logs too: a
// channel's posting budget belongs to the incident, and the response_url bounds a reply to 5 messages).
import type { ChatPort } from '../adapters/chat.js';
import { backupCatalogue, environmentStatus, listBackups, recentLogs, type QueryDeps, type QueryRequest } from '../recovery/queries.js';
import { lifelineText, line, md } from './blocks.js';
import { logReplies, renderBackupCatalogue, renderBackupListing, renderStatus } from './recovery-replies.js';

export function createQueryAnswerer(deps: QueryDeps, chat: ChatPort): (request: QueryRequest) => Promise<void> {
  return async (request) => {
    try {
      await answer(deps, chat, request);
    } catch (err) {
      const why = lifelineText((err as Error).message);
      await chat.respond(request.responseUrl, line(md`:x: That lookup failed: ${why}`));
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
      for (const reply of logReplies(events, request)) await chat.respond(request.responseUrl, reply);
      return;
    }
  }
}
