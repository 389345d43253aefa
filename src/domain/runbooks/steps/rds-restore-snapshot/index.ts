// rds_restore_snapshot: the newest available snapshot of `source_instance` (manual or automated) restored as a new
// instance `target_instance` in `region`, copied there first when it lives in another region (`from_region`). The
// plan's "restore the database in the DR region"; its outputs (instance, endpoint, port) feed later steps.
// Snapshots of the instance already copied into `region` count too: when `from_region` is the region that is down,
// they are what there is to restore.
import { z } from 'zod';
import type { DbSnapshot } from '../../../../adapters/aws/port.js';
import { messageOf } from '../../../../shared/errors.js';
import { formatDuration } from '../../../../shared/format.js';
import { defineStepKind, type StepContext } from '../../step-kind.js';
import { awsRegion, waitOptions, type AwsStepDeps } from '../aws.js';

// A cross-region copy of a large database and the restore after it can take hours.
const DEADLINE_MS = 6 * 3_600_000;

const dbIdentifier = z
  .string()
  .regex(
    /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}$/,
    'must be an RDS identifier: a letter, then letters, digits and single hyphens, up to 63 characters',
  )
  .refine((id) => !id.endsWith('-'), 'must not end with a hyphen');

const params = z.strictObject({
  from_region: awsRegion.optional(),
  source_instance: dbIdentifier,
  region: awsRegion,
  target_instance: dbIdentifier,
  kms_key_id: z.string().min(1, 'must not be empty').optional(),
  instance_class: z
    .string()
    .regex(/^db\.[a-z0-9-]+\.[a-z0-9]+$/, 'must be an RDS instance class such as db.r6g.large')
    .optional(),
});
type Params = z.infer<typeof params>;

const chosen = z.object({
  id: z.string(),
  arn: z.string(),
  region: z.string(),
  /** When its data was taken (ISO): the restored data's age is measured from it. */
  takenAt: z.string(),
  encrypted: z.boolean(),
});

const state = z.object({
  snapshot: chosen.optional(),
  /** The copy in the target region: named before CopyDBSnapshot is called, so a resumed attempt finds it. */
  copy: z.string().optional(),
  /** Copies made so far (a failed copy is replaced by a new one under the next name). */
  copies: z.number().optional(),
  /** RestoreDBInstanceFromDBSnapshot was called (or about to be): a resumed attempt waits on the instance. */
  restoreStarted: z.boolean().optional(),
});
type State = z.infer<typeof state>;

function fromRegion(p: Params): string {
  return p.from_region ?? p.region;
}

interface Newest {
  readonly snapshot: DbSnapshot;
  readonly region: string;
  readonly takenAt: Date;
  /** Why `from_region` could not be read, when the newest is from `region` for that reason. */
  readonly unreadable?: string;
}

/**
 * The newest snapshot that can be restored now (by when its data was taken: a copy's own time is the copy's), in
 * `from_region` or already in `region`. A `from_region` that cannot be read is passed over when `region` has one.
 */
async function newestAvailable(p: Params, deps: AwsStepDeps): Promise<Newest | undefined> {
  const regions = searched(p);
  const lists = await Promise.allSettled(regions.map((r) => deps.aws.rds(r).listSnapshots(p.source_instance)));
  // The target region must answer: the restore goes there.
  const target = lists[regions.indexOf(p.region)]!;
  if (target.status === 'rejected') throw target.reason;
  const source = lists[0]!;
  const found = lists.flatMap((list, i) =>
    list.status === 'fulfilled'
      ? list.value.flatMap((snapshot) => {
          const takenAt = snapshot.originalCreatedAt ?? snapshot.createdAt;
          return snapshot.status === 'available' && takenAt ? [{ snapshot, region: regions[i]!, takenAt }] : [];
        })
      : [],
  );
  if (source.status === 'rejected' && found.length === 0) throw source.reason;
  const newest = found.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime())[0];
  if (!newest || source.status === 'fulfilled') return newest;
  return { ...newest, unreadable: `${fromRegion(p)} could not be read (${messageOf(source.reason)})` };
}

/** Where the snapshots are looked for: `from_region`, then `region` when it is another. */
function searched(p: Params): string[] {
  return [...new Set([fromRegion(p), p.region])];
}

function noSnapshot(p: Params): string {
  return `no available snapshot of ${p.source_instance} in ${searched(p).join(' or ')}`;
}

function kmsMissing(p: Params, newest: Newest): string | undefined {
  if (!newest.snapshot.encrypted || newest.region === p.region || p.kms_key_id) return undefined;
  return `the snapshot is encrypted: kms_key_id (a KMS key in ${p.region}) is needed to copy it there`;
}

export const rdsRestoreSnapshotKind = defineStepKind<AwsStepDeps>()({
  id: 'rds_restore_snapshot',
  params,
  state,
  outputs: ['instance', 'endpoint', 'port'],
  deadlineMs: () => DEADLINE_MS,
  describe: (p) =>
    `restore the newest snapshot of ${p.source_instance}${p.from_region && p.from_region !== p.region ? ` (${p.from_region}, copied to ${p.region})` : ''} as ${p.target_instance} in ${p.region}`,

  async plan(ctx, deps) {
    const p = ctx.params;
    const newest = await newestAvailable(p, deps);
    const exists = await deps.aws.rds(p.region).describeInstance(p.target_instance);
    const missing = [
      ...(newest ? [] : [noSnapshot(p)]),
      ...(exists ? [`an instance ${p.target_instance} already exists in ${p.region}`] : []),
    ];
    if (!newest) {
      return {
        does: `would restore ${p.target_instance} in ${p.region} from the newest snapshot of ${p.source_instance}`,
        missing,
      };
    }
    const noKey = kmsMissing(p, newest);
    if (noKey) missing.push(noKey);
    const age = formatDuration(Date.now() - newest.takenAt.getTime());
    const which = `snapshot ${newest.snapshot.id} in ${newest.region} (taken ${age} ago${newest.snapshot.encrypted ? ', encrypted' : ''})`;
    const copy = newest.region !== p.region ? `, copying it to ${p.region} first` : '';
    const passedOver = newest.unreadable
      ? `; ${newest.unreadable}, so only the snapshots in ${p.region} were looked at`
      : '';
    return { does: `would restore ${p.target_instance} in ${p.region} from ${which}${copy}${passedOver}`, missing };
  },

  async run(ctx, deps) {
    const p = ctx.params;
    const s = ctx.state;
    if (!s.snapshot) {
      const newest = await newestAvailable(p, deps);
      if (!newest) throw new Error(noSnapshot(p));
      const noKey = kmsMissing(p, newest);
      if (noKey) throw new Error(noKey);
      if (!newest.snapshot.arn) throw new Error(`RDS gave no ARN for snapshot ${newest.snapshot.id}`);
      if (newest.unreadable) ctx.note(`${newest.unreadable}; restoring from ${newest.snapshot.id} in ${p.region}`);
      s.snapshot = {
        id: newest.snapshot.id,
        arn: newest.snapshot.arn,
        region: newest.region,
        takenAt: newest.takenAt.toISOString(),
        encrypted: newest.snapshot.encrypted ?? false,
      };
    }
    const rds = deps.aws.rds(p.region);
    // Before any copy: an instance of that name that this step did not start is never taken over.
    if (!s.restoreStarted && (await rds.describeInstance(p.target_instance))) {
      throw new Error(
        `an instance ${p.target_instance} already exists in ${p.region}; the step restores only into a new one`,
      );
    }
    const restoreFrom =
      s.snapshot.region === p.region ? s.snapshot.id : await copyIntoRegion(ctx, deps, s.snapshot.arn);
    const shape = p.instance_class ? { instanceClass: p.instance_class } : {};
    if (!s.restoreStarted) {
      s.restoreStarted = true;
      await ctx.recordChange(
        `RestoreDBInstanceFromDBSnapshot: ${p.target_instance} in ${p.region} from snapshot ${restoreFrom}`,
      );
      await rds.restoreFromSnapshot(restoreFrom, p.target_instance, shape);
    } else if (!(await rds.describeInstance(p.target_instance))) {
      // Recorded, yet RDS has no such instance: the earlier attempt's call never took (refused, or never sent).
      await rds.restoreFromSnapshot(restoreFrom, p.target_instance, shape);
    }
  },

  async check(ctx, deps) {
    const p = ctx.params;
    const snapshot = ctx.state.snapshot;
    if (!snapshot) throw new Error('no snapshot was chosen: the step has not run');
    const instance = await deps.aws.rds(p.region).waitForInstance(
      p.target_instance,
      waitOptions(deps, ctx, DEADLINE_MS, (status) => ctx.note(`instance ${p.target_instance}: ${status}`)),
    );
    if (!instance.endpoint) throw new Error(`${p.target_instance} is available but RDS reports no endpoint`);
    const { address, port } = instance.endpoint;
    const dataAgeMs = Date.now() - Date.parse(snapshot.takenAt);
    return {
      detail: `${p.target_instance} is available at ${address}:${port} in ${p.region}, restored from snapshot ${snapshot.id} (its data ${formatDuration(dataAgeMs)} old)`,
      outputs: { instance: p.target_instance, endpoint: address, port: String(port) },
      dataAgeMs,
    };
  },
});

/**
 * CopyDBSnapshot into the target region, once: the copy's name is recorded before the call, so a resumed attempt
 * waits on that copy (or makes it, when RDS has none by that name: the call never took). Returns the copy's id once it
 * is available.
 */
async function copyIntoRegion(ctx: StepContext<Params, State>, deps: AwsStepDeps, sourceArn: string): Promise<string> {
  const p = ctx.params;
  const s = ctx.state;
  const rds = deps.aws.rds(p.region);
  const kms = p.kms_key_id ? { kmsKeyId: p.kms_key_id } : undefined;
  const seen = s.copy === undefined ? undefined : await rds.describeSnapshot(s.copy);
  if (s.copy === undefined || seen?.status === 'failed') {
    s.copies = (s.copies ?? 0) + 1;
    s.copy = `lifeline-run-${ctx.run.number}-${p.target_instance}${s.copies > 1 ? `-${s.copies}` : ''}`;
    await ctx.recordChange(`CopyDBSnapshot: ${sourceArn} to ${p.region} as ${s.copy}`);
    await rds.copySnapshot(sourceArn, s.copy, kms);
  } else if (!seen) {
    await rds.copySnapshot(sourceArn, s.copy, kms);
  }
  const copy = s.copy;
  await rds.waitForSnapshot(
    copy,
    waitOptions(deps, ctx, DEADLINE_MS, (status) => ctx.note(`copy ${copy} in ${p.region}: ${status}`)),
  );
  return copy;
}
