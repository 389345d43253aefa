// Slack retries a request it thinks was lost, and people double-click. Each trigger_id is handled once.
import type { Db } from '../shared/db/pool.js';

/** true the first time a key is seen; false for every repeat. */
export async function claimRequest(db: Db, key: string): Promise<boolean> {
  const { rowCount } = await db.query('INSERT INTO handled_requests (request_key) VALUES ($1) ON CONFLICT DO NOTHING', [
    key,
  ]);
  return rowCount === 1;
}

/** Slack never retries after minutes, so a day of keys is plenty. */
export async function forgetOldRequests(db: Db): Promise<void> {
  await db.query(`DELETE FROM handled_requests WHERE handled_at < now() - interval '1 day'`);
}
