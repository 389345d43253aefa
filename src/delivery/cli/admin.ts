#!/usr/bin/env node
// `lifeline-admin token create <slack-user-id> [--days N]`: a personal API token made where the server runs, with the
// server's own environment (config and DATABASE_URL), for when Slack (and so `/dr token`) is down. It prints the token
// once, on stdout, and nowhere else; the creation is on the audit trail.
import { userInfo } from 'node:os';
import { createToken } from '../api/tokens.js';
import { ConfigError, readConfig } from '../../shared/config.js';
import { migrate } from '../../shared/db/migrate.js';
import { createPool } from '../../shared/db/pool.js';
import { createLogger } from '../../shared/log.js';
import { formatUtc } from '../../shared/format.js';
import { within } from '../../shared/timeout.js';
import { ADMIN_USAGE, parseAdminArgs } from './admin-args.js';

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
  const db = createPool(config.databaseUrl, createLogger('fatal', config.secrets, process.stderr));
  try {
    try {
      await within(db.query('SELECT 1'), 10_000);
    } catch (err) {
      process.stderr.write(`lifeline-admin: cannot reach Lifeline's PostgreSQL: ${(err as Error).message}\n`);
      return EXIT.failed;
    }
    await migrate(db);
    const issued = await createToken(db, {
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
    await within(db.end(), 2_000).catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lifeline-admin: failed: ${(err as Error).message}\n`);
    process.exit(EXIT.failed);
  },
);
