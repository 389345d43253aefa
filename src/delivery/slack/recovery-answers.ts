// Answers to the read-only /dr lookups. In Slack they run on a worker and are delivered to the sender's response_url
// (logs too: a channel's posting budget belongs to the incident, and the response_url bounds a reply to 5 messages);
// through the API they are answered in the response itself, in the same words.
import type { ChatMessage, ChatPort } from '../../adapters/slack/port.js';
import type { Reply } from './reply.js';
import { formatDuration } from '../../shared/format.js';
import {
  backupCatalogue,
  environmentStatus,
  listBackups,
  recentLogs,
  type QueryDeps,
  type QueryRequest,
  type QueryWhat,
} from '../../domain/recovery/queries.js';
import { joinMd, escapeMrkdwn, line, md, sectionText, type Mrkdwn } from './blocks.js';
import { logReplies, renderBackupCatalogue, renderBackupListing, renderStatus } from './recovery-replies.js';

/**
 * How long one lookup may take. Past it the asker is told, the lookup is stopped (a log read between or inside its
 * AWS calls) and its worker slot is free again; AWS's own per-call timeouts alone would allow minutes.
 */
export const LOOKUP_TIMEOUT_MS = 60_000;

/** The worker's answerer for Slack: replies at the request's response_url. */
export function createQueryAnswerer(
  deps: QueryDeps,
  chat: ChatPort,
  timeoutMs = LOOKUP_TIMEOUT_MS,
): (request: QueryRequest) => Promise<void> {
  return async (request) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const messages = await untilAborted(answer(deps, request, signal), signal);
      // Once the asker was told the lookup timed out, a late answer is not sent after it.
      for (const message of messages) {
        signal.throwIfAborted();
        await chat.respond(request.responseUrl, message);
      }
    } catch (err) {
      await chat.respond(request.responseUrl, line(lookupFailed(err, signal, timeoutMs)));
    }
  };
}

/**
 * The API's answerer: the answer is the reply, in the words Slack would show (logs as their bounded replies, joined),
 * with nothing posted in Slack.
 */
export function createInProcessAnswerer(
  deps: QueryDeps,
  timeoutMs = LOOKUP_TIMEOUT_MS,
): (request: QueryWhat) => Promise<Reply> {
  return async (request) => {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const messages = await untilAborted(answer(deps, request, signal), signal);
      return line(joinMd(messages.map(sectionText), '\n'));
    } catch (err) {
      return { ...line(lookupFailed(err, signal, timeoutMs)), failure: { kind: 'error' } };
    }
  };
}

function lookupFailed(err: unknown, signal: AbortSignal, timeoutMs: number): Mrkdwn {
  return signal.aborted
    ? md`:x: That lookup took longer than ${formatDuration(timeoutMs)} and was stopped. Ask again, or narrow it down.`
    : md`:x: That lookup failed: ${escapeMrkdwn((err as Error).message)}`;
}

/** Settles like `work`, or rejects as soon as `signal` aborts (work that ignores the signal is left behind). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function answer(deps: QueryDeps, request: QueryWhat, signal: AbortSignal): Promise<ChatMessage[]> {
  switch (request.kind) {
    case 'restore-list':
      return [renderBackupListing(await listBackups(deps, request.env))];
    case 'backups':
      return [renderBackupCatalogue(await backupCatalogue(deps, request.env))];
    case 'status': {
      const envs = request.env ? [request.env] : Object.keys(deps.file.environments);
      return [renderStatus(await Promise.all(envs.map((env) => environmentStatus(deps, env))))];
    }
    case 'logs':
      return logReplies(await recentLogs(deps, request, signal), request);
  }
}
