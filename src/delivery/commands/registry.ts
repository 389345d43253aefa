// One table per slash command: routing, parsing and the help text all come from it (after Monzo Response).
import { UserError } from '../../shared/errors.js';
import type { Reply } from '../slack/reply.js';

export interface CommandContext {
  readonly userId: string;
  readonly channelId: string;
  /** Set when Slack tells us the command was sent inside a thread. */
  readonly threadTs?: string | undefined;
  /** Where a reply that comes later (from a worker) goes; valid for 30 minutes. */
  readonly responseUrl?: string | undefined;
  /** Set when the command came through /api/v1 (the `lifeline` CLI) rather than Slack. */
  readonly viaApi?: boolean;
  /**
   * When the command reached Lifeline: a declaration's ladder runs from here, not from when a busy server got to it.
   */
  readonly receivedAt?: Date;
}

export type Effect = 'local' | 'read' | 'write';

export interface Subcommand<Args> {
  /** The first word(s) that select this entry, as shown in help. */
  readonly usage: string;
  readonly summary: string;
  matches(word: string): boolean;
  /** Throws UserError('bad_command') with the reason; the dispatcher adds the usage. */
  parse(rest: string, word: string): Args;
  /**
   * local: answered from this table alone, no I/O, so the reply can ride on Slack's ack;
   * read: looks at state, harmless to repeat; write: changes state, so a repeated trigger_id must not run it again.
   */
  readonly effect: Effect;
  /** Where the arguments decide it (`restore <env> list` only reads): the effect of these arguments. */
  effectOf?(args: Args): Effect;
  /**
   * Who may run it: everyone in allowed_channels, or responders only. Help shows it; the
   * services enforce it, so this is what the entry promises, never the check itself.
   */
  readonly access: 'anyone' | 'responders';
  /** Said in help instead of the plain access, where an entry's rule has a nuance (`list`: anyone). */
  readonly accessNote?: string;
  /** The reply for the sender; undefined when a worker will answer at the response_url instead. */
  run(args: Args, ctx: CommandContext): Promise<Reply | undefined>;
}

export interface SlashCommand {
  readonly name: string;
  readonly summary: string;
  readonly entries: readonly Subcommand<unknown>[];
}

/** Erases the argument type so entries of different shapes live in one table. */
export function subcommand<Args>(entry: Subcommand<Args>): Subcommand<unknown> {
  return entry as Subcommand<unknown>;
}

export function usageOf(command: SlashCommand, entry: Subcommand<unknown>): string {
  return `Usage: \`${command.name} ${entry.usage}\``;
}

export function helpText(command: SlashCommand): string {
  const lines = command.entries.map((e) => `\`${command.name} ${e.usage}\`  ${e.summary}${accessLabel(e)}`);
  return [`*${command.name}*: ${command.summary}`, ...lines].join('\n');
}

function accessLabel(entry: Subcommand<unknown>): string {
  const note = entry.accessNote ?? (entry.access === 'responders' ? 'responders only' : undefined);
  return note === undefined ? '' : ` _(${note})_`;
}

/** Splits off the first word and finds its entry; an unknown word is a refusal that shows every usage. */
export function route(command: SlashCommand, text: string): { entry: Subcommand<unknown>; word: string; rest: string } {
  const trimmed = text.trim();
  const [word = ''] = trimmed.split(/\s+/, 1);
  const rest = trimmed.slice(word.length).trim();
  const lower = word.toLowerCase();
  const entry = command.entries.find((e) => e.matches(lower));
  if (!entry) {
    const what = word === '' ? 'Say what to do.' : `Unknown subcommand "${word}".`;
    throw new UserError('bad_command', what, helpText(command));
  }
  return { entry, word: lower, rest };
}

export type Prepared =
  | { readonly kind: 'refused'; readonly error: UserError }
  | {
      readonly kind: 'ready';
      readonly entry: Subcommand<unknown>;
      readonly args: unknown;
      readonly usage: string;
      readonly effect: Effect;
    };

/** Routes and parses without any I/O, so a malformed command can be answered in the ack itself. */
export function prepare(command: SlashCommand, text: string): Prepared {
  try {
    const { entry, word, rest } = route(command, text);
    const usage = usageOf(command, entry);
    try {
      const args = entry.parse(rest, word);
      return { kind: 'ready', entry, args, usage, effect: entry.effectOf?.(args) ?? entry.effect };
    } catch (err) {
      if (err instanceof UserError && err.usage === undefined) return { kind: 'refused', error: withUsage(err, usage) };
      throw err;
    }
  } catch (err) {
    if (err instanceof UserError) return { kind: 'refused', error: err };
    throw err;
  }
}

/** Runs a parsed command; a refusal without a usage of its own gets the entry's, so the user sees the right form. */
export async function runPrepared(
  ready: Extract<Prepared, { kind: 'ready' }>,
  ctx: CommandContext,
): Promise<Reply | undefined> {
  try {
    return await ready.entry.run(ready.args, ctx);
  } catch (err) {
    if (err instanceof UserError && err.usage === undefined) throw withUsage(err, ready.usage);
    throw err;
  }
}

/** prepare + runPrepared: the whole command, refusals thrown as UserError. */
export async function execute(command: SlashCommand, text: string, ctx: CommandContext): Promise<Reply | undefined> {
  const prepared = prepare(command, text);
  if (prepared.kind === 'refused') throw prepared.error;
  return runPrepared(prepared, ctx);
}

function withUsage(err: UserError, usage: string): UserError {
  return new UserError(err.code, err.said, usage);
}

// ---- small parsing helpers shared by the commands ---------------------------------------------------------------

export function badCommand(message: string): UserError {
  return new UserError('bad_command', message);
}

export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}
