// The RPO watch: at least once a minute, every env's newest backup against its rpo_minutes.
// Overdue (an empty store counts) opens the env's `rpo` alert; a fresh backup clears it.
import type { FileConfig } from '../../shared/config.js';
import type { Logger } from '../../shared/log.js';
import { rpoBreachSummary, type RpoBreach, type RpoMet } from './alert-notifier.js';
import type { AlertDesk } from './alerts.js';
import { latestBackup, parseBackupName } from './names.js';
import type { BackupStore } from '../../adapters/backup-store/port.js';

export interface RpoReading {
  readonly env: string;
  readonly newest: { readonly name: string; readonly takenAt: Date } | undefined;
  readonly overdue: boolean;
}

export interface RpoWatchDeps {
  readonly file: FileConfig;
  readonly storeFor: (url: string) => BackupStore;
  readonly alerts: AlertDesk;
  /** Told every reading, for the newest-backup-age metric. */
  readonly observe: (reading: RpoReading) => void;
  readonly log: Logger;
}

export class RpoWatch {
  constructor(private readonly deps: RpoWatchDeps) {}

  /** Checks every env; one env's unreachable store does not stop the others. */
  async checkAll(now = new Date()): Promise<RpoReading[]> {
    const readings: RpoReading[] = [];
    for (const env of Object.keys(this.deps.file.environments)) {
      try {
        readings.push(await this.check(env, now));
      } catch (err) {
        this.deps.log.warn({ env, err: (err as Error).message }, 'RPO watch could not check this environment');
      }
    }
    return readings;
  }

  async check(envName: string, now = new Date()): Promise<RpoReading> {
    const env = this.deps.file.environments[envName];
    if (!env) throw new Error(`unknown environment ${envName}`);
    const store = this.deps.storeFor(env.backups.store);
    const listed = await store.list();
    const newest = latestBackup(
      listed.flatMap((o) => parseBackupName(env.backups.prefix, o.name) ?? []),
      now,
    );
    const limitMs = env.backups.rpo_minutes * 60_000;
    const ageMs = newest ? now.getTime() - newest.takenAt.getTime() : undefined;
    const overdue = ageMs === undefined || ageMs > limitMs;
    const reading: RpoReading = {
      env: envName,
      newest: newest ? { name: newest.name, takenAt: newest.takenAt } : undefined,
      overdue,
    };
    this.deps.observe(reading);
    if (overdue) {
      const backup = newest ? { name: newest.name, takenAt: newest.takenAt, ageMs: ageMs ?? 0 } : undefined;
      const location = store.location;
      const breach: RpoBreach = { kind: 'rpo_breach', env: envName, newest: backup, location, rpoMs: limitMs };
      await this.deps.alerts.raise('rpo', envName, rpoBreachSummary(breach), breach);
    } else if (newest) {
      const backup = { name: newest.name, ageMs: ageMs ?? 0 };
      const met: RpoMet = { kind: 'rpo_met', env: envName, newest: backup, rpoMs: limitMs };
      await this.deps.alerts.clear('rpo', envName, met);
    }
    return reading;
  }
}
