// preflight: everything a restore needs is checked before anything is created.
import { rm } from 'node:fs/promises';
import { formatSize } from '../../../shared/format.js';
import { connectClient } from '../../../pgtools/client.js';
import { RestoreFailedError, throwIfAborted } from '../../../pgtools/errors.js';
import { toolVersion } from '../../../pgtools/process.js';
import { checkPsql } from '../../../pgtools/psql-restrict.js';
import { checkLocal, fetchBackup, type Fetched } from './local-copy.js';
import { begin, checkPlan, contextOf, guarded, localDirOf, withServer, type Context } from './plan.js';
import type { LogicalRestorePlan, RestoreState, StepOutcome } from './plan.js';

interface TargetInfo {
  readonly version: string;
  readonly versionNum: number;
  readonly size: number;
}

type TargetRow = { version: string; num: string; can_create: boolean; owns: boolean; size: string };

async function readTarget(ctx: Context): Promise<TargetRow | undefined> {
  const client = await connectClient(ctx.conn, { queryTimeoutMs: 30_000 });
  try {
    await client.query('SELECT 1');
    const { rows } = await client.query<TargetRow>(
      `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num,
              (r.rolsuper OR r.rolcreatedb) AS can_create, pg_has_role(current_user, d.datdba, 'MEMBER') AS owns,
              pg_database_size(d.oid)::text AS size
         FROM pg_database d, pg_roles r
        WHERE d.datname = current_database() AND r.rolname = current_user`,
    );
    return rows[0];
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function probeTarget(ctx: Context): Promise<TargetInfo> {
  const row = await readTarget(ctx);
  if (!row) throw new RestoreFailedError(`cannot read the catalog of ${ctx.where}`);
  if (!row.can_create) {
    throw new RestoreFailedError(
      `the database user may not CREATE DATABASE on ${ctx.where}'s server (it needs CREATEDB): ` +
        'the restore builds a fresh database beside the target',
    );
  }
  if (!row.owns) {
    throw new RestoreFailedError(
      `the database user does not own ${ctx.where} (nor is a member of its owner), ` +
        'so it cannot rename it during the swap',
    );
  }
  // The swap runs from the maintenance database: make sure there is one we can reach.
  await withServer(ctx, async () => undefined);
  return { version: row.version.split(' ')[0] ?? row.version, versionNum: Number(row.num), size: Number(row.size) };
}

/** The server's answer and the client tools are independent: both are asked at once (on the recovery's clock). */
async function checkServerAndTools(ctx: Context): Promise<TargetInfo> {
  const { plan } = ctx;
  const probing = guarded(ctx, `cannot reach ${ctx.where}`, () => probeTarget(ctx));
  const versions = guarded(ctx, 'checking the PostgreSQL client tools', () =>
    Promise.all([
      toolVersion('pg_dump', plan.tools),
      toolVersion(plan.format === 'custom' ? 'pg_restore' : 'psql', plan.tools),
    ]),
  );
  versions.catch(() => undefined);
  const info = await probing;
  const [dump, client] = await versions;
  if (plan.format === 'sql.gz') checkPsql(client);
  const serverMajor = Math.floor(info.versionNum / 10000);
  if (dump.major < serverMajor) {
    throw new RestoreFailedError(
      `pg_dump ${dump.major} cannot back up PostgreSQL ${serverMajor} (it refuses newer servers): ` +
        `install the PostgreSQL ${serverMajor} client tools`,
    );
  }
  return info;
}

/**
 * The target answers and the user may CREATE DATABASE and rename the target; the client tools fit the server; the
 * backup is a local file (see fetchBackup; reused when already there), reads whole, and is the file the catalogue
 * says Lifeline made.
 */
export async function preflight(plan: LogicalRestorePlan, state?: RestoreState): Promise<StepOutcome> {
  const ctx = contextOf(plan);
  checkPlan(plan);
  throwIfAborted(plan.signal, 'preflight');
  let s = begin(ctx, state);
  const info = await checkServerAndTools(ctx);

  let fetched: Fetched;
  let integrity = 'checked before';
  try {
    fetched = await guarded(ctx, `cannot fetch backup ${plan.backupName}`, () => fetchBackup(ctx, s));
    s = fetched.state;
    if (!s.localChecked) {
      const checked = await guarded(ctx, `backup ${plan.backupName} failed its integrity check`, () =>
        checkLocal(ctx, s),
      );
      integrity = checked.detail;
      s = checked.state;
    }
  } catch (err) {
    // A failing step returns no state, so nobody else would know to remove what it fetched.
    await rm(localDirOf(plan, s.runId), { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  const sha = s.localSha256 ? `, sha256 ${s.localSha256.slice(0, 12)}` : '';
  const detail =
    `${ctx.where} answers (PostgreSQL ${info.version}, ${formatSize(info.size)}; ` +
    'the restore needs room for a second copy). ' +
    `Backup ${plan.backupName} ${fetched.how} (${formatSize(s.localSize ?? 0)}${sha}): ${integrity}.`;
  return { state: s, detail };
}
