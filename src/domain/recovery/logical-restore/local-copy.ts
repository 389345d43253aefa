// The backup as a local file pg_restore can seek in, and the checks that it is whole and the file Lifeline made.
import { createWriteStream } from 'node:fs';
import { link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '../../../adapters/backup-store/port.js';
import { RestoreFailedError } from '../../../pgtools/errors.js';
import { checkBackupFile } from '../../../pgtools/integrity.js';
import { meter, sha256Of } from '../../../pgtools/meters.js';
import { localDirOf, type Context, type RestoreState, type RunState } from './plan.js';

export type Fetched = {
  state: RunState;
  how: 'already here' | 'linked from the store' | 'read in place' | 'downloaded';
};

function notInStore(ctx: Context, err: unknown): unknown {
  const { plan } = ctx;
  return err instanceof NotFoundError
    ? new RestoreFailedError(`backup ${plan.backupName} is not in ${plan.store.location}`)
    : err;
}

function changed(ctx: Context): RestoreFailedError {
  return new RestoreFailedError(
    `backup ${ctx.plan.backupName} changed in ${ctx.plan.store.location} since this restore began`,
  );
}

/** A store on this machine: the file hard-linked into the run's folder, or read in place where a link is impossible. */
async function linkBackup(ctx: Context, s: RunState, source: string, dir: string, file: string): Promise<Fetched> {
  await rm(file, { force: true });
  const linked = await link(source, file).then(
    () => true,
    () => false,
  );
  const used = linked ? file : source;
  const { size } = await stat(used);
  if (s.localSize !== undefined && s.localSize !== size) throw changed(ctx);
  return {
    state: { ...s, localDir: dir, localFile: used, localSize: size, localSha256: undefined, localChecked: false },
    how: linked ? 'linked from the store' : 'read in place',
  };
}

/** Any other store: streamed into the run's folder (never held in memory) and hashed on the way. */
async function downloadBackup(ctx: Context, s: RunState, dir: string, file: string): Promise<Fetched> {
  const { plan } = ctx;
  const partial = join(dir, `.${plan.backupName}.partial`);
  const hashing = meter();
  try {
    const source: Readable = await plan.store.read(plan.backupName);
    await pipeline(source, hashing, createWriteStream(partial), plan.signal ? { signal: plan.signal } : {});
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    throw notInStore(ctx, err);
  }
  const sha256 = hashing.sha256();
  if (s.localSha256 !== undefined && s.localSha256 !== sha256) {
    await rm(file, { force: true });
    throw changed(ctx);
  }
  const checked = s.localSha256 === sha256 && s.localChecked === true;
  return {
    state: {
      ...s,
      localDir: dir,
      localFile: file,
      localSize: hashing.bytes(),
      localSha256: sha256,
      localChecked: checked,
    },
    how: 'downloaded',
  };
}

/**
 * Makes the backup a local file pg_restore can seek in. A store on this machine is not copied (a copy of a 1 GB dump
 * cost 3-5 s of every restore's RTO): the file is hard-linked into the run's folder, which keeps it readable even if
 * retention deletes it from the store meanwhile, or read in place where a link is impossible (another file system).
 * Any other store is streamed into the run's folder (never held in memory) and hashed on the way.
 */
export async function fetchBackup(ctx: Context, s: RunState): Promise<Fetched> {
  const dir = localDirOf(ctx.plan, s.runId);
  const file = join(dir, ctx.plan.backupName);
  if (s.localFile !== undefined && s.localSize !== undefined) {
    const info = await stat(s.localFile).catch(() => undefined);
    if (info?.isFile() && info.size === s.localSize) return { state: s, how: 'already here' };
  }
  await mkdir(dir, { recursive: true });
  const { store, backupName } = ctx.plan;
  if (!store.localPath) return downloadBackup(ctx, s, dir, file);
  let source: string;
  try {
    source = await store.localPath(backupName);
  } catch (err) {
    throw notInStore(ctx, err);
  }
  return linkBackup(ctx, s, source, dir, file);
}

/**
 * The catalogue's SHA-256 against the local file. A download was hashed on its way; a linked file is read once more
 * (measured: 1.4-1.8 s more for an 822 MB dump in the page cache), beside the integrity check. No expected hash: a
 * backup made elsewhere.
 */
async function checkChecksum(ctx: Context, s: RestoreState): Promise<{ sha256: string | undefined; detail: string }> {
  const { plan } = ctx;
  const expected = plan.expectedSha256;
  if (expected === undefined) {
    const detail = 'no catalogue entry (not made by Lifeline), so its checksum could not be checked';
    return { sha256: s.localSha256, detail };
  }
  const actual = s.localSha256 ?? (await sha256Of(s.localFile ?? '', plan.signal));
  if (actual !== expected) {
    throw new RestoreFailedError(
      `backup ${plan.backupName} is not the file Lifeline made: ` +
        `its sha256 is ${actual.slice(0, 12)}…, the catalogue's is ${expected.slice(0, 12)}…`,
    );
  }
  return { sha256: actual, detail: "its sha256 matches Lifeline's catalogue" };
}

/** The integrity check and the checksum check of the local file, at once; a checksum mismatch is reported first. */
export async function checkLocal(ctx: Context, s: RunState): Promise<{ state: RunState; detail: string }> {
  const { plan } = ctx;
  const backup = { file: s.localFile ?? '', size: s.localSize ?? 0, name: plan.backupName, format: plan.format };
  const run = { conn: ctx.conn, tools: plan.tools, signal: plan.signal, scrub: ctx.scrub };
  const [integrity, checksum] = await Promise.allSettled([checkBackupFile(backup, run), checkChecksum(ctx, s)]);
  if (checksum.status === 'rejected') throw checksum.reason;
  if (integrity.status === 'rejected') throw integrity.reason;
  return {
    state: { ...s, localSha256: checksum.value.sha256, localChecked: true },
    detail: `${integrity.value}; ${checksum.value.detail}`,
  };
}
