// Does a backup file read whole? Checked before anything is created for its restore.
import { messageOf } from '../shared/errors.js';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { PgConnection } from '../shared/db/connection.js';
import { formatSize } from '../shared/format.js';
import { RestoreFailedError } from './errors.js';
import { classifying, inflating } from './meters.js';
import { PlainSqlRefusal } from './plain-sql-guard.js';
import { countListEntries, runTool, ToolFailedError, type PgToolOptions } from './process.js';
import { refusedBackup } from './psql-restrict.js';

export type BackupFormat = 'custom' | 'sql.gz';

export interface BackupFile {
  readonly file: string;
  readonly size: number;
  /** The backup's name, for messages. */
  readonly name: string;
  readonly format: BackupFormat;
}

export interface ToolRun {
  /** Any connection of the server (pg_restore --list reads no database, but takes its environment from one). */
  readonly conn: PgConnection;
  readonly tools?: PgToolOptions;
  readonly signal?: AbortSignal;
  readonly scrub: (text: string) => string;
}

async function readMagic(file: string, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function checkCustom(backup: BackupFile, run: ToolRun): Promise<string> {
  const { file, name } = backup;
  const magic = await readMagic(file, 5);
  if (magic.toString('latin1') !== 'PGDMP')
    throw new RestoreFailedError(`backup ${name} is not a pg_dump custom-format archive`);
  const listing = runTool('pg_restore', ['--list', file], { ...run, stdout: 'pipe' });
  const entries = countListEntries(listing.stdout);
  try {
    await listing.done;
  } catch (err) {
    if (err instanceof ToolFailedError) throw new RestoreFailedError(`backup ${name} is unreadable: ${err.message}`);
    throw err;
  }
  return `custom format, table of contents reads (${entries()} entries)`;
}

async function checkPlainSql(backup: BackupFile, signal: AbortSignal | undefined): Promise<string> {
  const { file, name } = backup;
  const magic = await readMagic(file, 2);
  if (magic.length < 2 || magic[0] !== 0x1f || magic[1] !== 0x8b)
    throw new RestoreFailedError(`backup ${name} is not gzip-compressed`);
  // The same classifier the restore feeds psql through (restorePlainSql), over the whole inflated stream.
  const sink = classifying();
  try {
    await pipeline(...inflating(file), sink, signal ? { signal } : {});
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') throw err;
    if (err instanceof PlainSqlRefusal) throw refusedBackup(name, err);
    throw new RestoreFailedError(`backup ${name} is damaged: ${messageOf(err)}`);
  }
  const seen = sink.summary();
  const copies = `${seen.copyBlocks} COPY block${seen.copyBlocks === 1 ? '' : 's'}`;
  const own = seen.ownRestrict ? "; pg_dump's own \\restrict pair replaced by Lifeline's key" : '';
  const lines = `${seen.lines.toLocaleString('en-US')} lines`;
  return `gzip intact, ${formatSize(seen.bytes)} of SQL (${lines}, ${copies}), no psql meta-command${own}`;
}

/**
 * Custom format: the header and table of contents read (pg_restore --list). Reading every data block as well
 * (pg_restore -f /dev/null) was measured at about a third of the restore's own time, added to every restore's RTO
 * to catch a rare truncated archive a little earlier; the restore itself catches it anyway, before the target is
 * touched. .sql.gz: the whole gzip stream inflates (it is cheap, and the only check a plain dump gets). Returns what
 * was found, for the step's detail.
 */
export async function checkBackupFile(backup: BackupFile, run: ToolRun): Promise<string> {
  if (backup.size === 0) throw new RestoreFailedError(`backup ${backup.name} is empty`);
  return backup.format === 'custom' ? checkCustom(backup, run) : checkPlainSql(backup, run.signal);
}
