// Answers to the read-only /dr lookups, run on a worker and delivered to the sender's response_url (logs go to a
// thread in the channel, since they are meant to be read together).
import type { ChatMessage, ChatPort } from '../adapters/chat.js';
import { formatDuration } from '../incidents/format.js';
import { backupCatalogue, environmentStatus, listBackups, recentLogs, type QueryDeps, type QueryRequest } from '../recovery/queries.js';
import { mention } from './blocks.js';
import { logMessages, renderBackupCatalogue, renderBackupListing, renderStatus } from './recovery-replies.js';

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
      const text = signal.aborted
        ? `:x: That lookup took longer than ${formatDuration(timeoutMs)} and was stopped. Ask again, or narrow it down.`
        : `:x: That lookup failed: ${(err as Error).message}`;
      await chat.respond(request.responseUrl, { text });
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
      signal.throwIfAborted();
      const what = `${request.env} ${request.service}, last ${Math.round(request.sinceMs / 60_000)} min${request.filter ? `, filter "${request.filter}"` : ''}`;
      if (events.length === 0) return chat.respond(request.responseUrl, { text: `No log lines for ${what}.` });
      const parent = await chat.post(request.channel, { text: `:scroll: Logs of ${what}: ${events.length} lines (asked by ${mention(request.user)})` });
      for (const message of logMessages(events)) await chat.post(parent.channel, message, parent.ts);
      return chat.respond(request.responseUrl, { text: `Posted ${events.length} log lines in a thread.` });
    }
  }
}
