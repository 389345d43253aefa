// Answers to the read-only /dr lookups, run on a worker and delivered to the sender's response_url (logs too: a
// channel's posting budget belongs to the incident, and the response_url bounds a reply to 5 messages).
import type { ChatMessage, ChatPort } from '../adapters/chat.js';
import { formatDuration } from '../incidents/format.js';
import { backupCatalogue, environmentStatus, listBackups, recentLogs, type QueryDeps, type QueryRequest } from '../recovery/queries.js';
import { lifelineText, line, md } from './blocks.js';
import { logReplies, renderBackupCatalogue, renderBackupListing, renderStatus } from './recovery-replies.js';

/**
 * How long one lookup may take. Past it the asker is told, the lookup is stopped (a log read between or inside its
 * AWS calls) and its worker slot is free again; AWS's own per-call timeouts alone would allow minutes.
 */
export const LOOKUP_TIMEOUT_MS = 60_000;

export function createQueryAnswerer(
  deps: QueryDeps,
  chat: ChatPort,
  timeoutMs = LOOKUP_TIMEOUT_MS,
): (request: QueryRequest) => Promise<void> {
  return async (request) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      await untilAborted(answer(deps, chat, request, signal), signal);
    } catch (err) {
      const why = signal.aborted
        ? md`:x: That lookup took longer than ${formatDuration(timeoutMs)} and was stopped. Ask again, or narrow it down.`
        : md`:x: That lookup failed: ${lifelineText((err as Error).message)}`;
      await chat.respond(request.responseUrl, line(why));
    }
  };
}

/** Settles like `work`, or rejects as soon as `signal` aborts (work that ignores the signal is left behind). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function answer(deps: QueryDeps, chat: ChatPort, request: QueryRequest, signal: AbortSignal): Promise<void> {
  // Once the asker was told the lookup timed out, a late answer is not sent after it.
  const reply = (message: ChatMessage) => {
    signal.throwIfAborted();
    return chat.respond(request.responseUrl, message);
  };
  switch (request.kind) {
    case 'restore-list':
      return reply(renderBackupListing(await listBackups(deps, request.env)));
    case 'backups':
      return reply(renderBackupCatalogue(await backupCatalogue(deps, request.env)));
    case 'status': {
      const envs = request.env ? [request.env] : Object.keys(deps.file.environments);
      return reply(renderStatus(await Promise.all(envs.map((env) => environmentStatus(deps, env)))));
    }
    case 'logs': {
      const events = await recentLogs(deps, request, signal);
      for (const message of logReplies(events, request)) await reply(message);
      return;
    }
  }
}
