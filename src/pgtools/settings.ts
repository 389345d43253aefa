// What pg_dump without --create leaves out: a database's own encoding, locale, owner, settings, grants and comment.
// Read from one database and given to a new one, so a restored copy is the database it replaces.
import { quoteIdent, quoteLiteral } from '../shared/db/sql.js';
import { RestoreFailedError } from './errors.js';
import type { Maintenance } from './maintenance.js';

export interface DatabaseProperties {
  readonly encoding: string;
  readonly collate: string;
  readonly ctype: string;
  readonly provider: string;
  readonly locale: string | null;
  readonly icuRules: string | null;
  readonly owner: string;
  readonly connLimit: number;
  readonly acl: { grantee: string | null; privilege: string; grantable: boolean }[] | null;
  readonly settings: string[];
  readonly comment: string | null;
}

async function readGrants(m: Maintenance, database: string): Promise<NonNullable<DatabaseProperties['acl']>> {
  const grants = await m.client.query<{
    grantee: string | null;
    privilege: string;
    grantable: boolean;
    is_owner: boolean;
  }>(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee,
            a.privilege_type AS privilege, a.is_grantable AS grantable, a.grantee = d.datdba AS is_owner
       FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1`,
    [database],
  );
  return grants.rows
    .filter((g) => !g.is_owner)
    .map(({ grantee, privilege, grantable }) => ({ grantee, privilege, grantable }));
}

async function readSettings(m: Maintenance, database: string): Promise<string[]> {
  const settings = await m.client.query<{ setconfig: string[] }>(
    `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
      WHERE d.datname = $1 AND s.setrole = 0`,
    [database],
  );
  return settings.rows.flatMap((r) => r.setconfig ?? []);
}

export async function readDatabaseProperties(m: Maintenance, database: string): Promise<DatabaseProperties> {
  const { rows } = await m.client.query<{
    d: Record<string, unknown>;
    encoding: string;
    owner: string;
    comment: string | null;
  }>(
    `SELECT to_jsonb(d) AS d, pg_encoding_to_char(d.encoding) AS encoding, pg_get_userbyid(d.datdba) AS owner,
            shobj_description(d.oid, 'pg_database') AS comment
       FROM pg_database d WHERE d.datname = $1`,
    [database],
  );
  const row = rows[0];
  if (!row) throw new RestoreFailedError(`database ${quoteIdent(database)} does not exist`);
  const d = row.d;
  // Columns differ between server versions (datlocale came in 17, daticurules in 16): read them by name.
  const text = (key: string): string | null => {
    const value = d[key];
    return typeof value === 'string' ? value : null;
  };
  const hasAcl = d.datacl !== null && d.datacl !== undefined;
  return {
    encoding: row.encoding,
    collate: text('datcollate') ?? 'C',
    ctype: text('datctype') ?? 'C',
    provider: text('datlocprovider') ?? 'c',
    locale: text('daticulocale') ?? text('datlocale'),
    icuRules: text('daticurules'),
    owner: row.owner,
    connLimit: typeof d.datconnlimit === 'number' ? d.datconnlimit : -1,
    acl: hasAcl ? await readGrants(m, database) : null,
    settings: await readSettings(m, database),
    comment: row.comment,
  };
}

/** GUCs whose value is a list of separately quoted items (pg_dump's variable_is_guc_list_quote). */
const LIST_GUCS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** Splits `"$user", public` the way the server's SplitGUCList does (double quotes group, "" is a quote). */
function splitGucList(value: string): string[] {
  const items: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /\s/.test(value[i] ?? '')) i += 1;
    let item = '';
    if (value[i] === '"') {
      i += 1;
      while (i < value.length) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            item += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        item += value[i];
        i += 1;
      }
      while (i < value.length && value[i] !== ',') i += 1;
    } else {
      while (i < value.length && value[i] !== ',') {
        item += value[i];
        i += 1;
      }
      item = item.trim();
    }
    items.push(item);
    i += 1; // the comma
  }
  return items;
}

function settingStatement(database: string, setting: string): string | undefined {
  const eq = setting.indexOf('=');
  if (eq <= 0) return undefined;
  const name = setting.slice(0, eq);
  const value = setting.slice(eq + 1);
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) return undefined;
  const listed = LIST_GUCS.has(name.toLowerCase());
  const rendered = listed ? splitGucList(value).map(quoteLiteral).join(', ') : quoteLiteral(value);
  return `ALTER DATABASE ${quoteIdent(database)} SET ${name} = ${rendered}`;
}

function createStatement(name: string, p: DatabaseProperties): string {
  const parts = [`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0 ENCODING ${quoteLiteral(p.encoding)}`];
  parts.push(`LC_COLLATE ${quoteLiteral(p.collate)} LC_CTYPE ${quoteLiteral(p.ctype)}`);
  if (p.provider === 'i' && p.locale) {
    parts.push(`LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(p.locale)}`);
    if (p.icuRules) parts.push(`ICU_RULES ${quoteLiteral(p.icuRules)}`);
  } else if (p.provider === 'b' && p.locale) {
    parts.push(`LOCALE_PROVIDER builtin BUILTIN_LOCALE ${quoteLiteral(p.locale)}`);
  }
  parts.push(`OWNER ${quoteIdent(p.owner)}`);
  if (p.connLimit !== -1) parts.push(`CONNECTION LIMIT ${p.connLimit}`);
  return parts.join(' ');
}

/** The statements that give `name` the settings, grants and comment of `p`, each with what it copies. */
function extraStatements(name: string, p: DatabaseProperties): { sql: string; what: string }[] {
  const db = quoteIdent(name);
  const statements: { sql: string; what: string }[] = [];
  for (const setting of p.settings) {
    const sql = settingStatement(name, setting);
    if (sql) statements.push({ sql, what: `setting ${setting.split('=')[0] ?? ''}` });
  }
  if (p.acl) {
    statements.push({ sql: `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`, what: 'grants' });
    for (const g of p.acl) {
      const who = g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee);
      statements.push({
        sql: `GRANT ${g.privilege} ON DATABASE ${db} TO ${who}${g.grantable ? ' WITH GRANT OPTION' : ''}`,
        what: `grant of ${g.privilege} to ${g.grantee ?? 'PUBLIC'}`,
      });
    }
  }
  if (p.comment !== null)
    statements.push({ sql: `COMMENT ON DATABASE ${db} IS ${quoteLiteral(p.comment)}`, what: 'comment' });
  return statements;
}

/**
 * CREATE DATABASE `name` with the properties `p`, then its settings, grants and comment. Returns what could not be
 * copied (no right to), which the database stands without.
 */
export async function createDatabaseLike(m: Maintenance, name: string, p: DatabaseProperties): Promise<string[]> {
  await m.client.query(createStatement(name, p));
  const skipped: string[] = [];
  for (const { sql, what } of extraStatements(name, p)) {
    try {
      await m.client.query(sql);
    } catch {
      skipped.push(what);
    }
  }
  return skipped;
}
