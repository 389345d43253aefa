// The grammar of `lifeline-admin` (src/admin.ts), apart from the process so it can be checked without running one.
import { DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS } from '../../domain/access/tokens.js';

export const ADMIN_USAGE = [
  'Usage: lifeline-admin token create <slack-user-id> [--days N]',
  '  prints a new personal API token for that Slack user (U0123ABC),',
  `  valid N days (default ${DEFAULT_TOKEN_DAYS}, at most ${MAX_TOKEN_DAYS}).`,
  '  Run it where Lifeline runs: it reads the same environment (LIFELINE_CONFIG, DATABASE_URL, …).',
].join('\n');

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;

export function parseAdminArgs(argv: readonly string[]): { userId: string; days: number } | { problem: string } {
  const [noun, verb, userId, ...options] = argv;
  if (noun !== 'token' || verb !== 'create') return { problem: 'lifeline-admin knows one command: token create.' };
  if (userId === undefined || !SLACK_USER.test(userId))
    return { problem: `"${userId ?? ''}" is not a Slack user ID (they look like U0123ABC).` };
  let days = DEFAULT_TOKEN_DAYS;
  for (let i = 0; i < options.length; i++) {
    if (options[i] !== '--days') return { problem: `Unexpected "${options[i]}".` };
    const value = options[++i] ?? '';
    if (!/^[0-9]{1,3}$/.test(value) || Number(value) < 1 || Number(value) > MAX_TOKEN_DAYS) {
      return { problem: `--days takes a whole number from 1 to ${MAX_TOKEN_DAYS} (got "${value}").` };
    }
    days = Number(value);
  }
  return { userId, days };
}
