// The one place that reads PostgreSQL URLs and hides their passwords: what libpq would connect to, and that no
// spelling of the password survives in a message.
import { describe, expect, test } from 'vitest';
import {
  connectionOf,
  describeConnection,
  maskedUrl,
  parsePostgresUrl,
  scrubberFor,
  secretsOf,
  urlPassword,
  urlWithDatabase,
} from '../../src/shared/db/connection.js';

/** A password with every character that has a meaning in a URL: @ : / % (and a space). */
const PASSWORD = 'p@ss:w/rd%1 x';
const ENCODED = encodeURIComponent(PASSWORD);
const URL_WITH_PASSWORD = `postgres://app%20user:${ENCODED}@db.example.com:5433/shop%2Dmain?sslmode=require`;

describe('parsePostgresUrl', () => {
  test('takes the URL apart with user, password and database decoded', () => {
    expect(ENCODED).toBe('p%40ss%3Aw%2Frd%251%20x');
    expect(parsePostgresUrl(URL_WITH_PASSWORD)).toEqual({
      host: 'db.example.com',
      port: 5433,
      user: 'app user',
      password: PASSWORD,
      database: 'shop-main',
      sslmode: 'require',
      sslrootcert: undefined,
      sslcert: undefined,
      sslkey: undefined,
      connectTimeout: undefined,
      options: undefined,
    });
  });

  test('reads libpq query parameters when the URL itself leaves them out', () => {
    const conn = parsePostgresUrl(
      'postgresql:///?host=/var/run/postgresql&port=6432&user=ops&password=s3cret&dbname=app' +
        '&connect_timeout=7&options=-c%20statement_timeout%3D5s&sslrootcert=/etc/ca.pem',
    );
    expect(conn).toMatchObject({
      host: '/var/run/postgresql',
      port: 6432,
      user: 'ops',
      password: 's3cret',
      database: 'app',
      connectTimeout: 7,
      options: '-c statement_timeout=5s',
      sslrootcert: '/etc/ca.pem',
    });
  });

  test('an IPv6 host loses its brackets; a missing database is the user name, then postgres', () => {
    expect(parsePostgresUrl('postgres://ops@[::1]:5432').host).toBe('::1');
    expect(parsePostgresUrl('postgres://ops@[::1]:5432').database).toBe('ops');
    expect(parsePostgresUrl('postgres://localhost').database).toBe('postgres');
  });

  test('a malformed %-escape is kept as written, not thrown', () => {
    expect(parsePostgresUrl('postgres://u:100%zz@h/db').password).toBe('100%zz');
  });

  test('errors never repeat the URL (it may hold a password)', () => {
    const cases = [
      `mysql://u:${ENCODED}@h/db`,
      `postgres://u:${ENCODED}@h:99999/db`,
      `postgres://u:${ENCODED}@h:0/db`,
      `not a url ${PASSWORD}`,
    ];
    for (const url of cases) {
      let message = '';
      try {
        parsePostgresUrl(url);
      } catch (err) {
        message = err instanceof Error ? err.message : String(err);
      }
      expect(message).toMatch(/database URL/);
      expect(message).not.toContain(ENCODED);
      expect(message).not.toContain(PASSWORD);
    }
  });
});

describe('describeConnection', () => {
  test('names the database and where it is, never the user or password', () => {
    const text = describeConnection(parsePostgresUrl(URL_WITH_PASSWORD));
    expect(text).toBe('"shop-main" on db.example.com:5433');
    expect(describeConnection(parsePostgresUrl('postgres://u:pw@[::1]/a"b'))).toBe('"a""b" on [::1]:5432');
    expect(describeConnection({ database: 'app' })).toBe('"app" on the local server');
  });
});

describe('password spellings and scrubbing', () => {
  test('secretsOf holds the password as written in the URL, decoded, and in the query string', () => {
    const secrets = secretsOf(URL_WITH_PASSWORD);
    expect(secrets).toContain(ENCODED);
    expect(secrets).toContain(PASSWORD);
    expect(secretsOf('postgres://h/db?password=q%40q')).toEqual(expect.arrayContaining(['q@q', 'q%40q']));
    expect(secretsOf('postgres://h/db')).toEqual([]);
    expect(secretsOf('not a url')).toEqual([]);
  });

  test('scrubberFor removes every spelling of the password from a text, and any URL password', () => {
    const scrub = scrubberFor(URL_WITH_PASSWORD);
    const text =
      `pg_dump: error: connection to server failed: password "${PASSWORD}" for ${URL_WITH_PASSWORD}; ` +
      `raw ${ENCODED}; other postgres://x:hunter2@elsewhere/db`;
    const scrubbed = scrub(text);
    expect(scrubbed).not.toContain(PASSWORD);
    expect(scrubbed).not.toContain(ENCODED);
    expect(scrubbed).not.toContain('hunter2');
    expect(scrubbed).toContain('[redacted]');
    expect(scrubbed).toContain('db.example.com:5433');
  });

  test('urlPassword gives the decoded password for the logger, or nothing', () => {
    expect(urlPassword(URL_WITH_PASSWORD)).toBe(PASSWORD);
    expect(urlPassword('postgres://u@h/db')).toBeUndefined();
    expect(urlPassword('postgres://u:100%zz@h/db')).toBeUndefined();
    expect(urlPassword('not a url')).toBeUndefined();
  });

  test("connectionOf throws the caller's error with the message scrubbed", () => {
    class Refused extends Error {}
    const url = `mysql://u:${ENCODED}@h/db`;
    expect(() => connectionOf(url, (message) => new Refused(message))).toThrow(Refused);
    const { conn, scrub } = connectionOf(URL_WITH_PASSWORD, (message) => new Refused(message));
    expect(conn.password).toBe(PASSWORD);
    expect(scrub(`said ${PASSWORD}`)).toBe('said [redacted]');
  });
});

describe('URLs for messages and for another database', () => {
  test('maskedUrl shows the password as *** whatever the scheme', () => {
    expect(maskedUrl(URL_WITH_PASSWORD)).toBe(
      'postgres://app%20user:***@db.example.com:5433/shop%2Dmain?sslmode=require',
    );
    expect(maskedUrl('redis://:pw@127.0.0.1:6379/0')).toBe('redis://:***@127.0.0.1:6379/0');
    expect(maskedUrl('postgres://u@h/db')).toBe('postgres://u@h/db');
    expect(maskedUrl(`::${PASSWORD}`)).toBe('(an unparsable URL)');
  });

  test('urlWithDatabase keeps server and credentials and encodes the new name', () => {
    const other = urlWithDatabase(URL_WITH_PASSWORD, 'sandbox app/1');
    expect(other).toBe(`postgres://app%20user:${ENCODED}@db.example.com:5433/sandbox%20app%2F1?sslmode=require`);
    expect(parsePostgresUrl(other)).toMatchObject({ password: PASSWORD, database: 'sandbox app/1' });
  });
});
