// The sandbox's own settings: the only sandbox module that reads the environment (as src/shared/config.ts is for
// Lifeline). They are deliberately not Lifeline's variables: DATABASE_URL may well name a real Lifeline's state, and
// the sandbox drops and re-creates the databases it is given.
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SandboxSettings {
  /** Where the page and the stand-ins listen; 127.0.0.1 by default: anyone who reaches it may act as anyone. */
  readonly host: string;
  readonly port: number;
  /** Lifeline's own HTTP port (POST /slack/events, /healthz); 0 = any free port. */
  readonly lifelinePort: number;
  /** A role that may create and drop databases; the sandbox's databases are made on its server. */
  readonly adminUrl: string;
  readonly stateDb: string;
  readonly appDb: string;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly backupsDir: string;
  /** Where Lifeline's config file is written (named after the state database, so --clean finds it). */
  readonly configDir: string;
  /** Drop the databases and the backups folder on exit too (kept by default, to look at afterwards). */
  readonly dropOnExit: boolean;
  /** What to do: run the sandbox, remove what an earlier one left (--clean), or print the usage (--help). */
  readonly action: 'run' | 'clean' | 'help';
  readonly logLevel: string;
  /** What Lifeline's process inherits besides its settings: PATH to find pg_dump, HOME, locale, TMPDIR. */
  readonly inherited: Readonly<Record<string, string>>;
}

export class SettingsError extends Error {}

type Env = Readonly<Record<string, string | undefined>>;

const DATABASE_NAME = /^[a-z][a-z0-9_]{0,40}$/;
const INHERITED = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const USAGE = `Usage: npm run sandbox [-- --drop-on-exit | --clean | --help]

  (no option)      start the sandbox; Ctrl+C stops it, keeping its databases and backups to look at
  --drop-on-exit   start it, and drop its databases, backups, queues and config folder when it stops
  --clean          do not start it: remove what an earlier sandbox left (its databases with any restore leftovers,
                   the backups folder, the Redis keys under its queue prefix, its config folder), then exit
  --help           this text

Environment (all optional):
  PORT                    the page, default 3000
  SANDBOX_HOST            where it listens, default 127.0.0.1
  SANDBOX_DATABASE_URL    a PostgreSQL role that may create databases, default postgres://postgres@127.0.0.1:5432/postgres
  SANDBOX_STATE_DB        Lifeline's state database, default lifeline_sandbox
  SANDBOX_APP_DB          the sample application database, default sandbox_shop
  SANDBOX_BACKUPS_DIR     the sample database's backups, default <temp dir>/lifeline-sandbox/backups
  SANDBOX_QUEUE_PREFIX    Redis key prefix of Lifeline's queues, default sandbox
  SANDBOX_LIFELINE_PORT   Lifeline's own port, default any free one
  SANDBOX_DROP_ON_EXIT=1  the same as --drop-on-exit
  REDIS_URL               default redis://127.0.0.1:6379
  LOG_LEVEL               Lifeline's log level, default info`;

export function readSandboxSettings(
  env: Env = process.env,
  args: readonly string[] = process.argv.slice(2),
): SandboxSettings {
  const problems: string[] = [];
  const unknown = args.filter((a) => !['--drop-on-exit', '--clean', '--help', '-h'].includes(a));
  if (unknown.length > 0) problems.push(`unknown argument ${unknown.join(' ')}`);
  const help = args.includes('--help') || args.includes('-h');
  if (args.includes('--clean') && args.includes('--drop-on-exit'))
    problems.push('--clean and --drop-on-exit exclude each other (--clean does not start the sandbox)');
  const value = (name: string, fallback: string): string => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? fallback : v.trim();
  };
  const port = (name: string, fallback: number, allowZero: boolean): number => {
    const text = value(name, String(fallback));
    const n = Number(text);
    if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535)
      problems.push(`${name}: must be a port number, not ${text}`);
    return n;
  };
  const database = (name: string, fallback: string): string => {
    const text = value(name, fallback);
    if (!DATABASE_NAME.test(text))
      problems.push(`${name}: must be lower-case letters, digits and _ (starting with a letter), not ${text}`);
    return text;
  };
  const adminUrl = value('SANDBOX_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/postgres');
  if (!/^postgres(ql)?:\/\//.test(adminUrl)) problems.push('SANDBOX_DATABASE_URL: must be a postgres:// URL');
  const queuePrefix = value('SANDBOX_QUEUE_PREFIX', 'sandbox');
  if (!/^[A-Za-z0-9_-]+$/.test(queuePrefix)) problems.push('SANDBOX_QUEUE_PREFIX: must be letters, digits, _ or -');
  // The sandbox clears its queues at start: never those of a Lifeline running with the default prefix.
  if (queuePrefix === 'lifeline')
    problems.push('SANDBOX_QUEUE_PREFIX: must not be "lifeline", the prefix of a real Lifeline');
  const logLevel = value('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}`);
  const stateDb = database('SANDBOX_STATE_DB', 'lifeline_sandbox');
  const settings: SandboxSettings = {
    host: value('SANDBOX_HOST', '127.0.0.1'),
    port: port('PORT', 3000, false),
    lifelinePort: port('SANDBOX_LIFELINE_PORT', 0, true),
    adminUrl,
    stateDb,
    appDb: database('SANDBOX_APP_DB', 'sandbox_shop'),
    redisUrl: value('REDIS_URL', 'redis://127.0.0.1:6379'),
    queuePrefix,
    backupsDir: value('SANDBOX_BACKUPS_DIR', join(tmpdir(), 'lifeline-sandbox', 'backups')),
    configDir: join(tmpdir(), 'lifeline-sandbox', `config-${stateDb}`),
    dropOnExit:
      args.includes('--drop-on-exit') || ['1', 'true', 'yes'].includes(value('SANDBOX_DROP_ON_EXIT', '').toLowerCase()),
    logLevel,
    inherited: Object.fromEntries(INHERITED.flatMap((name) => (env[name] ? [[name, env[name]]] : []))),
    action: help ? 'help' : args.includes('--clean') ? 'clean' : 'run',
  };
  if (settings.stateDb === settings.appDb) problems.push('SANDBOX_STATE_DB and SANDBOX_APP_DB must differ');
  // Help is asked for when something is unclear: it is printed whatever else is wrong.
  if (problems.length > 0 && !help) throw new SettingsError(problems.join('\n'));
  return settings;
}
