// One table per slash command: routing, parsing and the help text all come from it (after Monzo Response).
import type { Block } from '../adapters/chat.js';
import { UserError } from '../errors.js';

export interface CommandContext {
  readonly userId: string;
  readonly channelId: string;
  /** Set when Slack tells us the command was sent inside a thread. */
  readonly threadTs?: string | undefined;
}

/** What the sender alone sees. */
export interface Reply {
  readonly text: string;
  readonly blocks?: readonly Block[];
}

export interface Subcommand<Args> {
  /** The first word(s) that select this entry, as shown in help. */
  readonly usage: string;
  readonly summary: string;
  matches(word: string): boolean;
  /** Throws UserError('bad_command') with the reason; the dispatcher adds the usage. */
  parse(rest: string, word: string): Args;
  run(args: Args, ctx: CommandContext): Promise<Reply>;
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
  const lines = command.entries.map((e) => `\`${command.name} ${e.usage}\`  ${e.summary}`);
  return [`*${command.name}*: ${command.summary}`, ...lines].join('\n');
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

/** Runs parse + run; any refusal without a usage of its own gets this entry's usage, so the user sees the right form. */
export async function execute(command: SlashCommand, text: string, ctx: CommandContext): Promise<Reply> {
  const { entry, word, rest } = route(command, text);
  try {
    return await entry.run(entry.parse(rest, word), ctx);
  } catch (err) {
    if (err instanceof UserError && err.usage === undefined) throw new UserError(err.code, err.message, usageOf(command, entry));
    throw err;
  }
}

// ---- small parsing helpers shared by the commands ---------------------------------------------------------------

export function badCommand(message: string): UserError {
  return new UserError('bad_command', message);
}

export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}
