// A backup file restored into a fresh, empty database: pg_restore -j for custom format, gunzip | psql for .sql.gz;
// then its planner statistics.
import { messageOf } from '../shared/errors.js';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import type { PgConnection } from '../shared/db/connection.js';
import { connectClient } from './client.js';
import { abortable, AbortError, RestoreFailedError } from './errors.js';
import type { ToolRun } from './integrity.js';
import { inflating } from './meters.js';
import { PlainSqlRefusal, restrictedFeed } from './plain-sql-guard.js';
import { runTool, toolConnectionArgs, toolVersion } from './process.js';
import { checkPsql, refusedBackup } from './psql-restrict.js';

/** Server settings for the restore's own sessions. Asynchronous commit is safe here: the fresh database is only
 * used after swap, whose own (synchronous) commit flushes every WAL record before it. */
const RESTORE_SERVER_OPTIONS = '-c synchronous_commit=off';

/** pg_restore of a custom-format archive into `run.conn`'s (empty) database, over `jobs` sessions. */
export async function restoreArchive(run: ToolRun, file: string, jobs: number): Promise<void> {
  const args = [
    '--no-owner',
    '--no-privileges',
    '--exit-on-error',
    `--jobs=${jobs}`,
    ...toolConnectionArgs(run.conn),
    file,
  ];
  await runTool('pg_restore', args, { ...run, serverOptions: RESTORE_SERVER_OPTIONS }).done;
}

function isPipeClosed(err: unknown): boolean {
  const code = err instanceof Error && 'code' in err ? err.code : undefined;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * gunzip | psql into `run.conn`'s (empty) database, with the two defences of plain-sql-guard.ts: the classifier
 * between them (what the integrity check accepted is exactly what psql gets, but for the dump's own \restrict pair),
 * and psql restricted under a key of our own that nothing in its input can know. --no-psqlrc: no file of the host's
 * adds to what psql runs; ON_ERROR_STOP: the first error (a refused meta-command included) ends it with a failure.
 * Its environment is runTool's: PATH, locale and libpq settings, nothing else. `name` is the backup's, for messages.
 */
export async function restorePlainSql(run: ToolRun, file: string, name: string): Promise<void> {
  // Again here: the integrity check may have run on another worker, with other client tools.
  checkPsql(await toolVersion('psql', run.tools));
  const key = randomBytes(32).toString('hex');
  const args = ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', ...toolConnectionArgs(run.conn)];
  const psql = runTool('psql', args, {
    ...run,
    stdin: 'pipe',
    stdout: 'ignore',
    serverOptions: RESTORE_SERVER_OPTIONS,
  });
  const stdin = psql.stdin;
  if (!stdin) throw new Error('psql started without a stdin pipe');
  // A refused line stops psql before its input closes (psql runs what is left unfinished at the end of its input).
  const feeding = pipeline(
    ...inflating(file),
    restrictedFeed(key, () => psql.kill()),
    stdin,
  );
  // A damaged stream must not let psql run what it has so far and exit 0.
  feeding.catch((err: unknown) => {
    if (!isPipeClosed(err)) psql.kill();
  });
  const [fed, exited] = await Promise.allSettled([feeding, psql.done]);
  if (exited.status === 'rejected' && exited.reason instanceof AbortError) throw exited.reason;
  if (fed.status === 'rejected' && fed.reason instanceof PlainSqlRefusal) throw refusedBackup(name, fed.reason);
  if (fed.status === 'rejected' && !isPipeClosed(fed.reason)) {
    throw new RestoreFailedError(`backup ${name} is damaged: ${run.scrub(messageOf(fed.reason))}`);
  }
  if (exited.status === 'rejected') throw exited.reason;
  if (fed.status === 'rejected') throw new RestoreFailedError(`psql stopped reading ${name} early`);
}

/** Fresh planner statistics: one ANALYZE per table, biggest first, over up to `sessions` sessions. */
export async function analyzeDatabase(
  conn: PgConnection,
  sessions: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  const clients: pg.Client[] = [];
  const endAll = (): void => {
    for (const c of clients) void c.end().catch(() => undefined);
  };
  const run = async (): Promise<number> => {
    const first = await connectClient(conn, { queryTimeoutMs: 0 });
    clients.push(first);
    const { rows } = await first.query<{ name: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
        ORDER BY c.relpages DESC, 1`,
    );
    const queue = rows.map((r) => r.name);
    const wanted = Math.max(1, Math.min(sessions, queue.length));
    while (clients.length < wanted) clients.push(await connectClient(conn, { queryTimeoutMs: 0 }));
    await Promise.all(
      clients.map(async (client) => {
        for (let table = queue.shift(); table !== undefined; table = queue.shift())
          await client.query(`ANALYZE ${table}`);
      }),
    );
    return rows.length;
  };
  try {
    // On abort the sessions are closed; dropping the database WITH (FORCE) afterwards ends the server side.
    return await abortable(signal, 'ANALYZE of the restored database', run(), endAll);
  } finally {
    endAll();
  }
}
