// Alerts Lifeline raises on its own (an RPO breach, a failed backup): one PagerDuty `warning` to on-call and at
// most one Slack post while the alert is open, one `resolve` when it clears. The open alert lives in PostgreSQL
// (open_alerts), so a restart neither repeats nor forgets it.
import type { PagerPort } from '../../adapters/pagerduty/port.js';
import type { FileConfig } from '../../shared/config.js';
import { inTransaction, type Db } from '../../shared/db/pool.js';
import type { Logger } from '../../shared/log.js';
import type { AlertNotice, AlertNotifier } from './alert-notifier.js';

export type AlertKind = 'rpo' | 'backup_failed';

export interface AlertDeskDeps {
  readonly db: Db;
  readonly pager: PagerPort;
  readonly notifier: AlertNotifier;
  readonly file: FileConfig;
  readonly log: Logger;
}

/** Fixed per env and kind: PagerDuty folds every trigger with the key into one alert. */
export function alertKey(kind: AlertKind, env: string): string {
  return kind === 'rpo' ? `lifeline-rpo-${env}` : `lifeline-backup-failed-${env}`;
}

export class AlertDesk {
  constructor(private readonly deps: AlertDeskDeps) {}

  /**
   * Opens the alert if it is not open, and sends what has not been sent yet: the page, then the notice (`notice`
   * undefined: someone else already told people). Each send is recorded in its own transaction, so a Slack
   * failure never causes a second page; a send that failed is tried again on the next call.
   */
  async raise(kind: AlertKind, env: string, summary: string, notice: AlertNotice | undefined): Promise<void> {
    const key = alertKey(kind, env);
    await inTransaction(this.deps.db, async (tx) => {
      await tx.query(
        `INSERT INTO open_alerts (dedup_key, env, kind, summary, posted_at) VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN NULL ELSE clock_timestamp() END)
         ON CONFLICT (dedup_key) DO NOTHING`,
        [key, env, kind, summary, notice !== undefined],
      );
      // The row lock keeps two workers from sending the same page twice; a failed page rolls the new row back.
      const { rows } = await tx.query<{ paged_at: Date | null }>(
        'SELECT paged_at FROM open_alerts WHERE dedup_key = $1 FOR UPDATE',
        [key],
      );
      if (!rows[0] || rows[0].paged_at) return;
      const routingKey = this.oncallKey();
      if (routingKey) {
        await this.deps.pager.send({
          routingKey,
          action: 'trigger',
          dedupKey: key,
          payload: { summary, source: 'lifeline', severity: 'warning', customDetails: { env } },
        });
      }
      await tx.query('UPDATE open_alerts SET paged_at = clock_timestamp() WHERE dedup_key = $1', [key]);
    });
    if (!notice) return;
    await inTransaction(this.deps.db, async (tx) => {
      const { rows } = await tx.query<{ posted_at: Date | null }>(
        'SELECT posted_at FROM open_alerts WHERE dedup_key = $1 FOR UPDATE',
        [key],
      );
      if (!rows[0] || rows[0].posted_at) return;
      await this.deps.notifier.tell(notice);
      await tx.query('UPDATE open_alerts SET posted_at = clock_timestamp() WHERE dedup_key = $1', [key]);
    });
  }

  /**
   * Closes the alert if it is open: `resolve` to PagerDuty (if it was paged), then `notice`. Once PagerDuty has the
   * resolve the alert is closed, whatever Slack does, so a new breach pages again.
   */
  async clear(kind: AlertKind, env: string, notice: AlertNotice | undefined): Promise<boolean> {
    const key = alertKey(kind, env);
    const closed = await inTransaction(this.deps.db, async (tx) => {
      const { rows } = await tx.query<{ paged_at: Date | null }>(
        'SELECT paged_at FROM open_alerts WHERE dedup_key = $1 FOR UPDATE',
        [key],
      );
      const row = rows[0];
      if (!row) return false;
      const routingKey = this.oncallKey();
      if (row.paged_at && routingKey) await this.deps.pager.send({ routingKey, action: 'resolve', dedupKey: key });
      await tx.query('DELETE FROM open_alerts WHERE dedup_key = $1', [key]);
      return true;
    });
    if (closed && notice) {
      try {
        await this.deps.notifier.tell(notice);
      } catch (err) {
        this.deps.log.warn({ env, kind, err: (err as Error).message }, 'the alert was resolved but Slack was not told');
      }
    }
    return closed;
  }

  async isOpen(kind: AlertKind, env: string): Promise<boolean> {
    const { rows } = await this.deps.db.query('SELECT 1 FROM open_alerts WHERE dedup_key = $1', [alertKey(kind, env)]);
    return rows.length > 0;
  }

  private oncallKey(): string | undefined {
    const key = this.deps.file.roles.oncall?.pagerduty_routing_key;
    if (!key)
      this.deps.log.warn(
        'no "oncall" role with a pagerduty_routing_key: backup and RPO alerts are posted but not paged',
      );
    return key;
  }
}
