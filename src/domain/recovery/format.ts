import { codeSpan } from '../../shared/text.js';

/** The env's verify queries for a plan, each marked as code: "`SELECT COUNT(*) FROM users`, `SELECT 1`". */
export function verifyQueries(queries: readonly string[]): string {
  return queries.length === 0 ? 'none configured' : queries.map(codeSpan).join(', ');
}
