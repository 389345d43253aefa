import { describe, expect, test } from 'vitest';
import { drCommand, parseLogs, parseRestore, parseSince } from '../../src/delivery/commands/dr.js';
import { helpText, prepare } from '../../src/delivery/commands/registry.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { UserError } from '../../src/shared/errors.js';
import type { RecoveryService } from '../../src/domain/recovery/service.js';
import { testConfigYaml } from '../support/test-config.js';

const FILE: FileConfig = parseConfigText(
  testConfigYaml({
    environmentsYaml: `  production:
    database: { url: "postgres://u:pw@db/prod", rds_instance: prod-db, verify: [SELECT 1] }
    backups: { store: "s3://bucket/prod/", prefix: solosuccess_production, retention_days: 30, rpo_minutes: 360 }
    ecs: { cluster: prod, services: [api, worker], log_group: /ecs/prod/api, max_count: 8 }
    require_approval: [restore, scale, redeploy]
  staging:
    database: { url: "postgres://db/staging" }
    backups: { store: "file:///tmp/staging", prefix: solosuccess_staging, retention_days: 7, rpo_minutes: 1440 }`,
  }),
  { PD_KEY_ONCALL: 'a', PD_KEY_LEAD: 'b', PD_KEY_CTO: 'c', PD_KEY_CEO: 'd' },
);

function refusal(work: () => unknown): string {
  try {
    work();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).message;
  }
  throw new Error('expected a refusal');
}

const untouchable = new Proxy(
  {},
  { get: () => () => Promise.reject(new Error('the service must not be called')) },
) as RecoveryService;
const command = drCommand({
  db: undefined as never,
  file: FILE,
  recovery: untouchable,
  query: () => Promise.reject(new Error('no query expected')),
  tokens: {
    create: () => Promise.reject(new Error('no token expected')),
    revokeAll: () => Promise.reject(new Error('no token expected')),
  },
  runbooks: undefined as never,
});

describe('/dr restore parsing', () => {
  test('the four sources', () => {
    expect(parseRestore(FILE, 'production list')).toEqual({ env: 'production', list: true });
    expect(parseRestore(FILE, 'production latest')).toEqual({
      env: 'production',
      params: { kind: 'restore', source: { type: 'latest' } },
    });
    expect(parseRestore(FILE, 'production file solosuccess_production_20240115_120000.sql.gz')).toEqual({
      env: 'production',
      params: { kind: 'restore', source: { type: 'file', name: 'solosuccess_production_20240115_120000.sql.gz' } },
    });
    expect(parseRestore(FILE, 'production file solosuccess_production_pre-restore_20240115_120000.dump').env).toBe(
      'production',
    );
    expect(parseRestore(FILE, 'production snapshot rds:prod-db-2024-01-15-00-05')).toEqual({
      env: 'production',
      params: { kind: 'restore', source: { type: 'snapshot', id: 'rds:prod-db-2024-01-15-00-05' } },
    });
  });

  test.each([
    ['nowhere latest', 'Unknown environment "nowhere" (configured: production, staging).'],
    ['', 'Name the environment.'],
    ['production', 'Say list, latest, file <name> or snapshot <id>.'],
    ['production newest', 'Unknown restore source "newest": use list, latest, file <name> or snapshot <id>.'],
    [
      'production file ../../etc/passwd',
      '"../../etc/passwd" is not a backup name of production: expected solosuccess_production_YYYYMMDD_HHMMSS.sql.gz or .dump (or a _pre-restore_ safety copy).',
    ],
    [
      'production file solosuccess_staging_20240115_120000.dump',
      '"solosuccess_staging_20240115_120000.dump" is not a backup name of production: expected solosuccess_production_YYYYMMDD_HHMMSS.sql.gz or .dump (or a _pre-restore_ safety copy).',
    ],
    ['staging snapshot snap-1', 'Environment staging has no rds_instance; snapshot restores need one.'],
    ['production snapshot "x;rm', 'Name the RDS snapshot id (letters, digits and hyphens).'],
    ['production latest now', 'Unexpected text "now".'],
  ])('%s is refused', (text, message) => {
    expect(refusal(() => parseRestore(FILE, text))).toBe(message);
  });
});

describe('/dr logs parsing', () => {
  test('defaults to 15 minutes, takes --since and --filter', () => {
    expect(parseLogs(FILE, 'production api')).toEqual({
      env: 'production',
      service: 'api',
      sinceMs: 900_000,
      filter: undefined,
    });
    expect(parseLogs(FILE, 'production api --since 2h --filter connection refused')).toEqual({
      env: 'production',
      service: 'api',
      sinceMs: 7_200_000,
      filter: 'connection refused',
    });
  });

  test.each([
    ['production web', 'Unknown service "web" in production (configured: api, worker).'],
    ['staging api', 'Environment staging has no ECS services configured.'],
    ['production api --since 25h', '--since goes back at most 24h.'],
    ['production api --since abc', '--since takes a number with s, m or h, like 15m (got "abc").'],
    ['production api --filter', '--filter needs some text.'],
    ['production api --tail', 'Unexpected "--tail": use --since 15m and/or --filter TEXT.'],
  ])('%s is refused', (text, message) => {
    expect(refusal(() => parseLogs(FILE, text))).toBe(message);
  });

  test('parseSince', () => {
    expect(parseSince('90s')).toBe(90_000);
    expect(parseSince('24h')).toBe(86_400_000);
    expect(refusal(() => parseSince('0m'))).toContain('--since takes');
  });
});

describe('/dr through the table: refusals carry the usage and call nothing', () => {
  test.each([
    ['scale production api -1', 'The count must be a whole number from 0 to 8 (got "-1").'],
    ['scale production api 3.5', 'The count must be a whole number from 0 to 8 (got "3.5").'],
    ['scale production api 9', 'The count must be a whole number from 0 to 8 (got "9").'],
    ['scale production api', 'Say how many tasks.'],
    ['redeploy production', 'Name the service (api, worker).'],
    ['cancel 7', 'Name the job, for example JOB-7.'],
    ['status nowhere', 'Unknown environment "nowhere" (configured: production, staging).'],
  ])('%s', (text, message) => {
    const prepared = prepare(command, text);
    expect(prepared.kind).toBe('refused');
    if (prepared.kind !== 'refused') return;
    expect(prepared.error.message).toBe(message);
    expect(prepared.error.usage).toMatch(/^Usage: `\/dr /);
  });

  test('an unknown subcommand shows every form', () => {
    const prepared = prepare(command, 'frobnicate');
    expect(prepared.kind === 'refused' && prepared.error.usage).toBe(helpText(command));
  });

  test('help lists the README’s grammar', () => {
    const help = helpText(command);
    for (const form of [
      'restore <env> list|latest|file <name>|snapshot <snapshot-id>',
      'scale <env> <service> <count>',
      'redeploy <env> <service>',
      'logs <env> <service> [--since 15m] [--filter TEXT]',
      'status [env]',
      'jobs',
      'cancel <job-id>',
      'audit [env]',
      'help',
    ]) {
      expect(help).toContain(`\`/dr ${form}\``);
    }
  });
});
