// `lifeline …`: the slash commands from a terminal, for when Slack is down (chat is a single point of failure in a
// disaster). A client of a running Lifeline (/api/v1): it reads only LIFELINE_URL and LIFELINE_TOKEN, and the server
// decides who the caller is (from the token), applies Slack's rules and answers in Slack's words. What the CLI
// changes is told in Slack by the server, now or when Slack answers again.
import type { CommandResponse } from '../api/routes.js';
import { helpTables } from '../commands/help.js';
import { prepare, route, runPrepared, type SlashCommand } from '../commands/registry.js';
import { UserError } from '../../shared/errors.js';
import { parseJobId } from '../../domain/recovery/model.js';
import { parseRunId, runId } from '../../domain/runbooks/model.js';
import { ApiUnreachableError, createApiClient, type ApiAnswer, type ApiClient } from './client.js';
import { followJob, followRun } from './follow.js';
import type { CliSettings } from './settings.js';
import { toTerminal } from './terminal.js';

/** Exit codes: it did what was asked; Lifeline refused it (bad command, not permitted, bad token); it failed. */
export const EXIT = { ok: 0, failed: 1, refused: 2 } as const;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

export interface CliOptions {
  readonly settings: CliSettings;
  /** Ctrl-C: stop following a job (it goes on). */
  readonly signal?: AbortSignal;
}

export const USAGE = [
  'Usage: lifeline [--no-wait] <command>',
  '  lifeline incident <subcommand …>   as /incident in Slack (lifeline incident help)',
  '  lifeline dr <subcommand …>         as /dr in Slack (lifeline dr help)',
  '  lifeline approve JOB-<n>|RUN-<n>   approve a recovery job or a runbook run (approvers only, never your own)',
  '  lifeline reject JOB-<n>|RUN-<n>    reject it (the requester or an approver)',
  '  lifeline run done RUN-<n>          the step a person does is done (the requester or an approver)',
  '  lifeline run retry|skip|abort RUN-<n>  a stopped run: run its failed step again, skip it, or abort (approvers)',
  '  lifeline help                      this text',
  '--no-wait: do not follow a job to its end.',
  'Settings: LIFELINE_URL (the Lifeline server, e.g. https://lifeline.internal:3000) and LIFELINE_TOKEN (your personal',
  'token: /dr token in Slack, or ask an operator for `lifeline-admin token create <your Slack user ID>`).',
].join('\n');

const TABLE_OF = { incident: '/incident', dr: '/dr' } as const;

export async function runCli(argv: readonly string[], io: CliIo, options: CliOptions): Promise<number> {
  const noWait = argv.includes('--no-wait');
  const [command, ...rest] = argv.filter((a) => a !== '--no-wait');
  if (command === undefined) {
    io.err(USAGE);
    return EXIT.refused;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    io.out(USAGE);
    return EXIT.ok;
  }
  if (!['incident', 'dr', 'approve', 'reject', 'run'].includes(command)) {
    io.err(`lifeline: unknown command "${command}".\n${USAGE}`);
    return EXIT.refused;
  }
  const text = rest.join(' ');
  if (command === 'incident' || command === 'dr') {
    // What the table answers by itself (help) needs no server, no settings and no token.
    const local = await localAnswer(helpTables()[command], text);
    if (local !== undefined) {
      io.out(toTerminal(local));
      return EXIT.ok;
    }
  }
  let job: string | undefined;
  let run: { id: string; action: string } | undefined;
  if (command === 'approve' || command === 'reject') {
    const jobNumber = rest.length === 1 ? parseJobId(rest[0]!) : undefined;
    const runNumber = rest.length === 1 ? parseRunId(rest[0]!) : undefined;
    if (jobNumber === undefined && runNumber === undefined) {
      io.err(`Name the job or run, for example \`lifeline ${command} JOB-7\` or \`lifeline ${command} RUN-3\`.`);
      return EXIT.refused;
    }
    if (jobNumber !== undefined) job = `JOB-${jobNumber}`;
    else run = { id: runId(runNumber!), action: command };
  }
  if (command === 'run') {
    const [action = '', id = '', ...extra] = rest;
    const number = parseRunId(id);
    if (!['done', 'retry', 'skip', 'abort'].includes(action) || number === undefined || extra.length > 0) {
      io.err('Say what to do and which run: `lifeline run done|retry|skip|abort RUN-3`.');
      return EXIT.refused;
    }
    run = { id: runId(number), action };
  }

  const client = connect(options.settings, io);
  if (!client) return EXIT.refused;
  try {
    const answer = run
      ? await client.actOnRun(run.id, run.action, options.signal)
      : command === 'approve' || command === 'reject'
        ? await client.decide(job!, command, options.signal)
        : await client.command(TABLE_OF[command as keyof typeof TABLE_OF], text, options.signal);
    const outcome = tell(answer, io);
    if (outcome !== EXIT.ok) return outcome;
    const startedRun = answer.body.run_started === true ? answer.body.run : undefined;
    if (startedRun !== undefined && !noWait) {
      const left = await followRun(client, startedRun, (line) => io.out(line), { signal: options.signal });
      return left === undefined || left === 'succeeded' ? EXIT.ok : EXIT.failed;
    }
    const started = answer.body.job_started === true ? answer.body.job : undefined;
    if (started === undefined || noWait) return EXIT.ok;
    const ended = await followJob(client, started, (line) => io.out(line), { signal: options.signal });
    return ended === undefined || ended === 'succeeded' ? EXIT.ok : EXIT.failed;
  } catch (err) {
    if (err instanceof ApiUnreachableError) {
      io.err(`lifeline: ${err.message}`);
      return EXIT.failed;
    }
    if (options.signal?.aborted) {
      io.err('lifeline: interrupted before Lifeline answered; the command may still have been carried out.');
      return EXIT.failed;
    }
    throw err;
  }
}

/** The reply of a table entry that is answered from the table alone (effect `local`), else undefined. */
async function localAnswer(table: SlashCommand, text: string): Promise<string | undefined> {
  try {
    if (route(table, text).entry.effect !== 'local') return undefined;
  } catch (err) {
    // An unknown subcommand is the server's to refuse (and to count), like every other refusal.
    if (err instanceof UserError) return undefined;
    throw err;
  }
  const prepared = prepare(table, text);
  if (prepared.kind !== 'ready') return undefined;
  // A local entry looks at nothing but its table: there is no user or channel to give it.
  return (await runPrepared(prepared, { userId: 'lifeline-cli', channelId: 'terminal' }))?.text;
}

function connect(settings: CliSettings, io: CliIo): ApiClient | undefined {
  const missing = [...(settings.url ? [] : ['LIFELINE_URL']), ...(settings.token ? [] : ['LIFELINE_TOKEN'])];
  if (missing.length > 0) {
    io.err(`lifeline: set ${missing.join(' and ')}. Nothing was done.\n${USAGE}`);
    return undefined;
  }
  if (!/^https?:$/.test(protocolOf(settings.url!) ?? '')) {
    io.err(`lifeline: LIFELINE_URL must be an http:// or https:// URL (got "${settings.url}"). Nothing was done.`);
    return undefined;
  }
  return createApiClient(settings.url!, settings.token!);
}

function protocolOf(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}

/** Prints the server's reply; returns the exit code it means (0 unless refused or failed). */
function tell(answer: ApiAnswer<CommandResponse>, io: CliIo): number {
  const { status, body } = answer;
  const reply = toTerminal(body.reply ?? '');
  if (body.ok) {
    if (reply !== '') io.out(reply);
    return EXIT.ok;
  }
  io.err(reply !== '' ? reply : `lifeline: Lifeline answered HTTP ${status}.`);
  // 4xx: Lifeline refused it (the command, the permission or the token); 5xx: it could not carry it out.
  return status >= 400 && status < 500 ? EXIT.refused : EXIT.failed;
}
