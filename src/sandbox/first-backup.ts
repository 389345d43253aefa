// The sample database's first backup, taken by Lifeline's own backup job (the same request, plan, steps, catalogue,
// audit trail and Slack messages as `/dr backup production`), so that everything after it — `/dr backups`, a drill,
// a restore — finds a backup Lifeline made and makes every check.
//
// The sandbox runs this job itself, in its own process, before it starts Lifeline: Lifeline's RPO watch looks at the
// store as soon as it starts (contract section 7: an empty store is overdue) and would otherwise page on-call about
// the empty store in the first second of the walkthrough.
import type { ChatPort } from '../adapters/slack/client.js';
import type { PagerPort } from '../adapters/pagerduty/client.js';
import type { RdsPort } from '../adapters/aws/aws.js';
import { AlertDesk } from '../domain/backups/alerts.js';
import { RpoWatch } from '../domain/backups/rpo-watch.js';
import { createBackupStore } from '../adapters/backup-store/stores.js';
import type { FileConfig } from '../shared/config.js';
import { migrate } from '../shared/db/migrate.js';
import { createPool } from '../shared/db/pool.js';
import type { Logger } from '../shared/log.js';
import { z } from 'zod';
import { defineKind, type Kind } from '../domain/recovery/kind.js';
import { backupKind } from '../domain/recovery/kinds/backup/index.js';
import type { KindsTable } from '../domain/recovery/kinds/index.js';
import { jobId, type JobKind } from '../domain/recovery/model.js';
import { plainSaid } from '../shared/text.js';
import { RecoveryRunner } from '../domain/recovery/runner.js';
import { RecoveryService } from '../domain/recovery/service.js';
import { getJob } from '../domain/recovery/store.js';
import { createSlackRecoveryNotifier } from '../delivery/slack/recovery-notifier.js';
import { queueForSlack, queuePlanForSlack } from '../delivery/slack/outbox.js';
import { SetupError } from './errors.js';

export interface FirstBackupOptions {
  /** Lifeline's state database (migrated here, as Lifeline's own startup would). */
  readonly stateUrl: string;
  readonly file: FileConfig;
  readonly env: string;
  /** Who the job is requested by, and where its messages go. */
  readonly requestedBy: string;
  readonly channel: string;
  /** Lifeline's Slack and PagerDuty clients, pointed at the sandbox's stand-ins. */
  readonly chat: ChatPort;
  readonly pager: PagerPort;
  /** A command-triggered backup takes no RDS snapshot; retention reads only Lifeline's own snapshot records. */
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
  return { backup, restore: refused('restore'), scale: refused('scale'), redeploy: refused('redeploy'), drill: refused('drill') };
}

/** Runs `/dr backup <env>` through Lifeline's recovery service and runner, to the end; returns the job's outcome. */
export async function runFirstBackup(options: FirstBackupOptions): Promise<string> {
  const { file, log } = options;
  const db = createPool(options.stateUrl, log);
  try {
    await migrate(db);
    const notifier = createSlackRecoveryNotifier(options.chat, {
      keepText: (text, channel) => queueForSlack(db, { channel, text }),
      keepPlan: (job) => queuePlanForSlack(db, job),
    });
    const alerts = new AlertDesk({ db, pager: options.pager, chat: options.chat, file, log });
    const rpo = new RpoWatch({ file, storeFor: createBackupStore, alerts, observe: () => undefined, log });
    const backup = backupKind({
      db,
      storeFor: createBackupStore,
      rds: options.rds,
      alerts,
      rpo,
      observe: () => undefined,
      log,
    });
    // No queue: each trigger is remembered and run right here, in order.
    const planned: number[] = [];
    const queued: number[] = [];
    const queue = {
      plan: async (job: number) => void planned.push(job),
      run: async (job: number) => void queued.push(job),
      expireAt: async () => undefined,
    };
    const service = new RecoveryService({ db, file, notifier, queue, log });
    const runner = new RecoveryRunner({
      db,
      file,
      notifier,
      queue,
      kinds: backupOnly(backup),
      approvers: (job) => service.approversFor(job),
      log,
      leaseMs: 30_000,
      stepDeadlineMs: 30 * 60_000,
    });
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
    await db.end();
  }
}
