import { codeSpan } from '../../shared/text.js';

/** 688.0 MB, 1.2 GB: for messages. */
export function formatSize(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KB`;
  return `${bytes} B`;
}

/** The env's verify queries for a plan, each marked as code: "`SELECT COUNT(*) FROM users`, `SELECT 1`". */
export function verifyQueries(queries: readonly string[]): string {
  return queries.length === 0 ? 'none configured' : queries.map(codeSpan).join(', ');
}
