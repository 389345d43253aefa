#!/usr/bin/env node
// `lifeline-admin token create <slack-user-id> [--days N]`: a personal API token made where the server runs, with the
// server's own environment (config and DATABASE_URL), for when Slack (and so `/dr token`) is down. It prints the token
// once, on stdout, and nowhere else; the creation is on the audit trail.
import { messageOf } from './shared/errors.js';
import { userInfo } from 'node:os';
import { createToken } from './domain/access/tokens.js';
import { ADMIN_USAGE, parseAdminArgs } from './delivery/cli/admin-args.js';
import { ConfigError, readConfig } from './shared/config.js';
import { formatUtc } from './shared/format.js';
import { createLogger } from './shared/log.js';
import { openStateDatabase, StartupError, type StateDatabase } from './wiring/runtime.js';

const EXIT = { ok: 0, failed: 1, refused: 2 } as const;

async function main(): Promise<number> {
  const args = parseAdminArgs(process.argv.slice(2));
  if ('problem' in args) {
    process.stderr.write(`lifeline-admin: ${args.problem}\n${ADMIN_USAGE}\n`);
    return EXIT.refused;
  }
  let config;
  try {
    config = readConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`lifeline-admin: config error: ${problem}\n`);
    return EXIT.refused;
  }
  // Nothing is logged (the terminal is for the answer), and what would be is scrubbed like the server's lines.
  let state: StateDatabase;
  try {
    state = await openStateDatabase(config, createLogger('fatal', config.secrets, process.stderr));
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    process.stderr.write(`lifeline-admin: cannot reach Lifeline's PostgreSQL: ${err.message}\n`);
    return EXIT.failed;
  }
  try {
    const issued = await createToken(state.db, {
      userId: args.userId,
      via: 'lifeline-admin',
      days: args.days,
      actor: `lifeline-admin (${userInfo().username})`,
    });
    process.stdout.write(`${issued.token}\n`);
    process.stderr.write(
      `lifeline-admin: a personal API token for ${issued.userId}, valid until ${formatUtc(issued.expiresAt)}; ` +
        'it is shown this once.\n',
    );
    return EXIT.ok;
  } finally {
    await state.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lifeline-admin: failed: ${messageOf(err)}\n`);
    process.exit(EXIT.failed);
  },
);
