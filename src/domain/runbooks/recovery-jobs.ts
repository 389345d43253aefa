// The restore and backup steps' RecoveryJobsPort on top of the recovery jobs: a job requested through the recovery
// service as `/dr restore` and `/dr backup` request theirs (one job per target, audited, planned and run by the
// workers with every check), but approved by the run that asked for it.
import { z } from 'zod';
import type { BackupStore } from '../../adapters/backup-store/port.js';
import type { FileConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db/pool.js';
import { plainSaid } from '../../shared/text.js';
import { latestBackup } from '../backups/names.js';
import { storedBackups } from '../recovery/kinds/stored-backup.js';
import { ACTIVE_STATES, jobId, type JobParams, type RecoveryJob } from '../recovery/model.js';
import type { RecoveryService } from '../recovery/service.js';
import * as store from '../recovery/store.js';
import type { JobIntent, JobView, RecoveryJobsPort } from './steps/recovery-jobs.js';

export interface RecoveryJobsDeps {
  readonly db: Db;
  readonly file: Pick<FileConfig, 'environments'>;
  readonly storeFor: (url: string) => BackupStore;
  readonly service: Pick<RecoveryService, 'request'>;
}

/** What the job's state tells of its backup: the restore's as planned, the backup's once written. */
const backupOfJob = z.object({
  backup: z.object({ name: z.string(), takenAt: z.string() }).optional(),
  taken: z.object({ name: z.string() }).optional(),
});

export function createRecoveryJobs(deps: RecoveryJobsDeps): RecoveryJobsPort {
  function unknownEnv(env: string): string {
    return `unknown environment "${env}" (environments: ${Object.keys(deps.file.environments).join(', ')})`;
  }

  return {
    async planRestore(env, backup) {
      const config = deps.file.environments[env];
      if (!config) return { missing: [unknownEnv(env)] };
      const backupStore = deps.storeFor(config.backups.store);
      const backups = await storedBackups(backupStore, config);
      const chosen = backup === 'latest' ? latestBackup(backups) : backups.find((b) => b.name === backup);
      if (!chosen) {
        const none = backup === 'latest' ? `no backup of ${env}` : `no backup ${backup}`;
        return { missing: [`${none} in ${backupStore.location}`] };
      }
      return { backup: { name: chosen.name, takenAt: chosen.takenAt }, missing: [] };
    },
    async planBackup(env) {
      return { missing: deps.file.environments[env] ? [] : [unknownEnv(env)] };
    },
    lastJobNumber: () => store.lastJobNumber(deps.db),
    async start(intent, by) {
      const job = await deps.service.request({
        env: intent.env,
        params: paramsOf(intent),
        actor: by.requestedBy,
        channel: by.channel,
        approvedAs: by.approvedAs,
      });
      return job.number;
    },
    async startedAfter(intent, by, after) {
      const job = await store.jobRequestedAfter(deps.db, after, {
        kind: intent.kind,
        env: intent.env,
        requestedBy: by.requestedBy,
        requestedIn: by.channel,
      });
      return job?.number;
    },
    async job(number) {
      const job = await store.getJob(deps.db, number);
      if (!job) throw new Error(`there is no ${jobId(number)}`);
      return viewOf(job);
    },
  };
}

function paramsOf(intent: JobIntent): JobParams {
  if (intent.kind === 'backup') return { kind: 'backup', trigger: 'command' };
  const source =
    intent.backup === 'latest' ? { type: 'latest' as const } : { type: 'file' as const, name: intent.backup };
  return { kind: 'restore', source };
}

function viewOf(job: RecoveryJob): JobView {
  const read = backupOfJob.safeParse(job.stepState ?? {});
  const state = read.success ? read.data : {};
  const backup = state.backup
    ? { name: state.backup.name, takenAt: new Date(state.backup.takenAt) }
    : state.taken && { name: state.taken.name, takenAt: undefined };
  const ended = ACTIVE_STATES.includes(job.state) ? 'no' : job.state === 'succeeded' ? 'succeeded' : 'failed';
  const outcome = job.outcome ? plainSaid(job.outcome) : job.state.replace('_', ' ');
  return { number: job.number, id: jobId(job.number), ended, outcome, backup, startedAt: job.startedAt };
}
