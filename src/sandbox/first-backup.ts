// The sample database's first backup, taken by Lifeline's own backup job (the same request, plan, steps, catalogue,
// audit trail and Slack messages as `/dr backup production`), so that everything after it — `/dr backups`, a drill,
// a restore — finds a backup Lifeline made and makes every check.
//
// The sandbox runs this job itself, in its own process, before it starts Lifeline: Lifeline's RPO watch looks at the
// store as soon as it starts (an empty store is overdue) and would otherwise page on-call about
// the empty store in the first second of the walkthrough.
import type { RdsPort } from '../adapters/aws/port.js';
import { z } from 'zod';
import { defineKind, type Kind } from '../domain/recovery/kind.js';
import { backupKind } from '../domain/recovery/kinds/backup/index.js';
import type { KindsTable } from '../domain/recovery/kinds/index.js';
import { jobId, type JobKind } from '../domain/recovery/model.js';
import { getJob } from '../domain/recovery/store.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/log.js';
import { createMetrics } from '../shared/metrics.js';
import { openStateDatabase } from '../wiring/runtime.js';
import { createAdapters, createBackupJobs, createRecovery, createRecoveryNotifier } from '../wiring/services.js';
import { plainSaid } from '../shared/text.js';
import { SetupError } from './errors.js';

export interface FirstBackupOptions {
  /** Lifeline's own config, read from the environment the sandbox starts Lifeline with: its stand-ins, its state. */
  readonly config: Config;
  readonly env: string;
  /** Who the job is requested by, and where its messages go. */
  readonly requestedBy: string;
  readonly channel: string;
  /** The simulated AWS's: a command-triggered backup takes no snapshot; retention reads Lifeline's own records. */
  readonly rds: RdsPort;
  readonly log: Logger;
}

/** Only the backup job is ever requested here: any other kind is refused at its plan. */
function backupOnly(backup: Kind<'backup'>): KindsTable {
  const refused = <K extends JobKind>(id: K): Kind<K> =>
    defineKind({
      id,
      state: z.object({}),
      stepNames: {},
      plan: async (ctx) => {
        throw new Error(`the sandbox runs only the first backup itself, not a ${ctx.job.kind} job`);
      },
      steps: () => [],
      summarise: () => ({ headline: 'not run', verified: [] }),
    });
  return {
    backup,
    restore: refused('restore'),
    scale: refused('scale'),
    redeploy: refused('redeploy'),
    drill: refused('drill'),
  };
}

/** Runs `/dr backup <env>` through Lifeline's recovery service and runner, to the end; returns the job's outcome. */
export async function runFirstBackup(options: FirstBackupOptions): Promise<string> {
  const { config, log } = options;
  // Migrated here, as Lifeline's own startup would.
  const { db, close } = await openStateDatabase(config, log);
  try {
    const adapters = createAdapters(config, log, { rds: options.rds });
    // The metrics are this process's own, and nobody reads them: the figures that count are the child Lifeline's.
    const { backup } = createBackupJobs({ db, file: config.file, adapters, metrics: createMetrics(), log });
    // No queue: each trigger is remembered and run right here, in order.
    const planned: number[] = [];
    const queued: number[] = [];
    const queue = {
      plan: async (job: number) => void planned.push(job),
      run: async (job: number) => void queued.push(job),
      expireAt: async () => undefined,
    };
    const notifier = createRecoveryNotifier(db, adapters.chat);
    const kinds = backupOnly(backupKind(backup));
    const { service, runner } = createRecovery({ db, config, notifier, queue, kinds, log });
    const job = await service.request({
      env: options.env,
      params: { kind: 'backup', trigger: 'command' },
      actor: options.requestedBy,
      channel: options.channel,
    });
    for (const number of planned.splice(0)) await runner.plan(number);
    for (const number of queued.splice(0)) await runner.run(number);
    const done = await getJob(db, job.number);
    if (done?.state !== 'succeeded') {
      throw new SetupError(
        `the first backup of the sample database (${jobId(job.number)}) ${done?.state ?? 'vanished'}: ` +
          (done?.outcome ? plainSaid(done.outcome) : 'no outcome'),
      );
    }
    return done.outcome ? plainSaid(done.outcome) : '';
  } finally {
    await close();
  }
}
