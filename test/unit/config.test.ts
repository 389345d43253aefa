import { loadRunbooks } from '../../src/domain/runbooks/definitions.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText, readConfig } from '../../src/shared/config.js';
import { EXAMPLE_ENV, EXAMPLE_PATH, EXAMPLE_TEXT } from './fixtures.js';

const BASE_ENV = {
  ...EXAMPLE_ENV,
  SLACK_BOT_TOKEN: 'xoxb-1-unit-test-token',
  SLACK_SIGNING_SECRET: 'sign-secret-abcdef',
  LIFELINE_CONFIG: EXAMPLE_PATH,
};

function configError(work: () => unknown): ConfigError {
  try {
    work();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // One line per problem, and the message is exactly those lines.
    expect(e.problems.length).toBeGreaterThan(0);
    for (const p of e.problems) expect(p).not.toContain('\n');
    expect(e.message).toBe(e.problems.join('\n'));
    expect(e.name).toBe('ConfigError');
    return e;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

function parseError(text: string, env: Record<string, string> = EXAMPLE_ENV): ConfigError {
  return configError(() => parseConfigText(text, env));
}

/** A small valid config; tests splice mistakes into it. */
function minimal(
  parts: {
    roles?: string;
    escalation?: string;
    severities?: string;
    approvals?: string;
    environments?: string;
    extra?: string;
  } = {},
): string {
  return [
    'slack:',
    '  emergency_channel: C0EMERGENCY',
    '  allowed_channels: [C0EMERGENCY]',
    'roles:',
    parts.roles ??
      '  oncall: { slack_users: [U0ONCALL], pagerduty_routing_key: rk-oncall-xyz }\n  engineering_lead: { slack_users: [U0LEAD], pagerduty_routing_key: rk-lead-xyz }',
    'escalation:',
    parts.escalation ?? '  - { after_minutes: 0, notify: oncall }\n  - { after_minutes: 15, notify: engineering_lead }',
    'severities:',
    parts.severities ??
      '  sev1: { page: true, respond_minutes: 0 }\n  sev2: { page: true, respond_minutes: 15 }\n  sev3: { page: false, respond_minutes: 60 }\n  sev4: { page: false, respond_minutes: 1440 }',
    'approvals:',
    parts.approvals ?? '  approver_roles: [engineering_lead]\n  expire_minutes: 30',
    'environments:',
    parts.environments ??
      '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///var/backups/staging", prefix: staging, retention_days: 7, rpo_minutes: 1440 }',
    parts.extra ?? '',
  ].join('\n');
}

describe('parseConfigText: the example file', () => {
  it("ships the plan's runbooks, each step passing its kind's startup check", () => {
    const runbooks = loadRunbooks(parseConfigText(EXAMPLE_TEXT, EXAMPLE_ENV));
    expect([...runbooks.keys()]).toEqual([
      'frontend-rollback',
      'region-failover',
      'ecs-service-recovery',
      'database-failure',
    ]);
    expect(runbooks.get('region-failover')!.steps.map((s) => s.kind.id)).toEqual([
      'confirm',
      'rds_restore_snapshot',
      'ecs_scale',
      'dns_switch',
      'http_check',
      'statuspage',
    ]);
    expect(runbooks.get('region-failover')!.approval).toBe('each_step');
    // The plan's "Complete Database Failure": the new instance's endpoint into the secret, Vercel, then a redeploy.
    expect(runbooks.get('database-failure')!.steps.map((s) => s.kind.id)).toEqual([
      'rds_restore_snapshot',
      'secret_update',
      'vercel_env',
      'ecs_redeploy',
      'http_check',
    ]);
  });

  it('accepts lifeline.example.yml as it stands, with its variables interpolated', () => {
    const file = parseConfigText(EXAMPLE_TEXT, EXAMPLE_ENV);
    expect(file.slack).toEqual({ emergency_channel: 'C0EMERGENCY', allowed_channels: ['C0EMERGENCY'] });
    expect(Object.keys(file.roles)).toEqual(['oncall', 'engineering_lead', 'cto', 'ceo']);
    expect(file.roles.oncall).toEqual({ slack_users: ['U0ONCALL'], pagerduty_routing_key: EXAMPLE_ENV.PD_KEY_ONCALL });
    expect(file.roles.ceo?.pagerduty_routing_key).toBe(EXAMPLE_ENV.PD_KEY_CEO);
    expect(file.escalation).toEqual([
      { after_minutes: 0, notify: 'oncall' },
      { after_minutes: 15, notify: 'engineering_lead' },
      { after_minutes: 30, notify: 'cto' },
      { after_minutes: 60, notify: 'ceo' },
    ]);
    expect(file.severities).toEqual({
      sev1: { page: true, respond_minutes: 0 },
      sev2: { page: true, respond_minutes: 15 },
      sev3: { page: false, respond_minutes: 60 },
      sev4: { page: false, respond_minutes: 1440 },
    });
    expect(file.approvals).toEqual({
      approver_roles: ['engineering_lead', 'cto'],
      expire_minutes: 30,
      allow_self_approval: false,
    });
    const prod = file.environments.production!;
    expect(prod.database).toEqual({
      url: EXAMPLE_ENV.PRODUCTION_DATABASE_URL,
      rds_instance: 'production-solosuccess-db',
      verify: ['SELECT COUNT(*) FROM users', 'SELECT MAX(created_at) FROM users'],
    });
    expect(prod.backups).toEqual({
      store: 's3://solosuccess-backups/production/',
      prefix: 'solosuccess_production',
      retention_days: 30,
      rpo_minutes: 360,
      schedule: '0 0,6,12,18 * * *',
      // Defaults: the plan's weekly restore test and its database RTO (P0, 1 hour).
      drill_schedule: '0 3 * * 1',
      rto_minutes: 60,
    });
    expect(prod.ecs).toEqual({
      cluster: 'solosuccess-production',
      services: ['solosuccess-ai-service'],
      max_count: 20,
      log_group: '/ecs/production/solosuccess-ai-service',
    });
    expect(prod.health_url).toBe('https://solosuccess.ai/api/health');
    expect(prod.require_approval).toEqual(['restore', 'scale', 'redeploy']);
    const staging = file.environments.staging!;
    expect(staging.database).toEqual({ url: EXAMPLE_ENV.STAGING_DATABASE_URL, verify: ['SELECT COUNT(*) FROM users'] });
    expect(staging.backups).toEqual({
      store: 'file:///var/backups/staging',
      prefix: 'solosuccess_staging',
      retention_days: 7,
      rpo_minutes: 1440,
      drill_schedule: '0 3 * * 1',
      rto_minutes: 60,
    });
    expect(staging.require_approval).toEqual(['restore']);
    expect(staging.ecs).toBeUndefined();
  });

  it('accepts the minimal fixture used by the other tests', () => {
    const file = parseConfigText(minimal(), {});
    expect(file.escalation).toHaveLength(2);
    expect(file.environments.staging?.require_approval).toEqual([]);
    expect(file.environments.staging?.database.verify).toEqual([]);
  });
});

describe('parseConfigText: ${VAR} interpolation', () => {
  it('replaces several variables inside one value and leaves other text alone', () => {
    const text = minimal({
      environments:
        '  staging:\n    database: { url: "postgres://${DB_USER}:${DB_PASS}@db:5432/x" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60 }',
    });
    const file = parseConfigText(text, { DB_USER: 'lifeline', DB_PASS: 'pw' });
    expect(file.environments.staging?.database.url).toBe('postgres://lifeline:pw@db:5432/x');
  });

  it('interpolates inside arrays', () => {
    const text = minimal({
      roles:
        '  oncall: { slack_users: ["${ONCALL_USER}", U0OTHER], pagerduty_routing_key: "${KEY}" }\n  engineering_lead: { slack_users: [], pagerduty_routing_key: k-lead-xyz }',
    });
    const file = parseConfigText(text, { ONCALL_USER: 'U0FROMENV', KEY: 'rk-from-env' });
    expect(file.roles.oncall).toEqual({ slack_users: ['U0FROMENV', 'U0OTHER'], pagerduty_routing_key: 'rk-from-env' });
  });

  it("a variable's value cannot change the YAML structure", () => {
    const text = minimal({
      roles:
        '  oncall: { slack_users: [U0ONCALL], pagerduty_routing_key: "${KEY}" }\n  engineering_lead: { slack_users: [], pagerduty_routing_key: k-lead-xyz }',
    });
    const tricky = 'rk: {evil: true}\nextra_key: 1';
    const file = parseConfigText(text, { KEY: tricky });
    expect(file.roles.oncall?.pagerduty_routing_key).toBe(tricky);
  });

  it('a missing variable is an error naming the key path and the variable', () => {
    const env: Record<string, string> = { ...EXAMPLE_ENV };
    delete env.PD_KEY_LEAD;
    const e = parseError(EXAMPLE_TEXT, env);
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('roles.engineering_lead.pagerduty_routing_key');
    expect(e.problems[0]).toContain('PD_KEY_LEAD');
  });

  it('an empty variable counts as missing', () => {
    const e = parseError(EXAMPLE_TEXT, { ...EXAMPLE_ENV, STAGING_DATABASE_URL: '' });
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('environments.staging.database.url');
    expect(e.problems[0]).toContain('STAGING_DATABASE_URL');
  });

  it('every missing variable gets its own line', () => {
    const e = parseError(EXAMPLE_TEXT, {});
    expect(e.problems).toHaveLength(6);
    for (const name of [
      'PD_KEY_ONCALL',
      'PD_KEY_LEAD',
      'PD_KEY_CTO',
      'PD_KEY_CEO',
      'PRODUCTION_DATABASE_URL',
      'STAGING_DATABASE_URL',
    ]) {
      expect(e.problems.filter((p) => p.includes(name))).toHaveLength(1);
    }
    expect(e.problems.find((p) => p.includes('PD_KEY_CTO'))).toContain('roles.cto.pagerduty_routing_key');
    expect(e.problems.find((p) => p.includes('PRODUCTION_DATABASE_URL'))).toContain(
      'environments.production.database.url',
    );
  });

  it('a missing variable inside an array names the index', () => {
    const text = minimal({ extra: '' }).replace(
      'allowed_channels: [C0EMERGENCY]',
      'allowed_channels: [C0EMERGENCY, "${OTHER_CHANNEL}"]',
    );
    const e = parseError(text, {});
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('slack.allowed_channels[1]');
    expect(e.problems[0]).toContain('OTHER_CHANNEL');
  });
});

describe('parseConfigText: unknown keys', () => {
  it.each([
    [
      'a role',
      minimal({
        roles:
          '  oncall: { slack_users: [U0ONCALL], pagerduty_routing_key: rk-x, pager: yes }\n  engineering_lead: { slack_users: [U0LEAD], pagerduty_routing_key: rk-y }',
      }),
      'roles.oncall.pager',
    ],
    [
      'an environment backup',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 7, rpo_minutes: 60, foo: 1 }',
      }),
      'environments.staging.backups.foo',
    ],
    [
      'an environment database',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db", passwd: x }\n    backups: { store: "file:///b", prefix: s, retention_days: 7, rpo_minutes: 60 }',
      }),
      'environments.staging.database.passwd',
    ],
    [
      'an escalation step',
      minimal({ escalation: '  - { after_minutes: 0, notify: oncall, repeat: 3 }' }),
      'escalation[0].repeat',
    ],
    [
      'a severity',
      minimal({
        severities:
          '  sev1: { page: true, respond_minutes: 0 }\n  sev2: { page: true, respond_minutes: 15 }\n  sev3: { page: false, respond_minutes: 60 }\n  sev4: { page: false, respond_minutes: 1440 }\n  sev5: { page: false, respond_minutes: 9 }',
      }),
      'severities.sev5',
    ],
    ['the slack section', minimal().replace('slack:\n', 'slack:\n  bot_token: nope\n'), 'slack.bot_token'],
    [
      'approvals',
      minimal({ approvals: '  approver_roles: [engineering_lead]\n  expire_minutes: 30\n  quorum: 2' }),
      'approvals.quorum',
    ],
    ['the top level', minimal({ extra: 'logging: { level: debug }' }), 'logging'],
  ])('an unknown key in %s is an error naming its full path', (_where, text, path) => {
    const e = parseError(text);
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(new RegExp(`(^|[ :])${path.replace(/[.[\]]/g, '\\$&')}: unknown key`));
  });

  it('reports every unknown key, one line each', () => {
    const text = minimal({
      roles:
        '  oncall: { slack_users: [U0ONCALL], pagerduty_routing_key: rk-x, pager: yes, phone: 1 }\n  engineering_lead: { slack_users: [U0LEAD], pagerduty_routing_key: rk-y }',
      extra: 'colour: blue',
    });
    const e = parseError(text);
    expect(e.problems).toHaveLength(3);
    expect(e.problems.some((p) => p.includes('roles.oncall.pager: unknown key'))).toBe(true);
    expect(e.problems.some((p) => p.includes('roles.oncall.phone: unknown key'))).toBe(true);
    expect(e.problems.some((p) => p.includes('colour: unknown key'))).toBe(true);
  });

  it('cli_users, which personal API tokens replaced, is refused with a line that says so', () => {
    const e = parseError(minimal({ extra: 'cli_users: { alice: U0LEAD }' }));
    expect(e.problems).toEqual([
      'config: cli_users: no longer exists: the `lifeline` CLI acts as the owner of a personal API token ' +
        '(`/dr token` in Slack, or `lifeline-admin token create`); remove this key',
    ]);
  });
});

describe('parseConfigText: wrong types and values name the key', () => {
  it.each([
    [
      'a string for minutes',
      minimal({ approvals: '  approver_roles: [engineering_lead]\n  expire_minutes: soon' }),
      'approvals.expire_minutes',
    ],
    [
      'a string for a boolean',
      minimal({
        severities:
          '  sev1: { page: "yes", respond_minutes: 0 }\n  sev2: { page: true, respond_minutes: 15 }\n  sev3: { page: false, respond_minutes: 60 }\n  sev4: { page: false, respond_minutes: 1440 }',
      }),
      'severities.sev1.page',
    ],
    [
      'negative minutes',
      minimal({ escalation: '  - { after_minutes: -1, notify: oncall }' }),
      'escalation[0].after_minutes',
    ],
    [
      'a missing severity',
      minimal({
        severities:
          '  sev1: { page: true, respond_minutes: 0 }\n  sev2: { page: true, respond_minutes: 15 }\n  sev3: { page: false, respond_minutes: 60 }',
      }),
      'severities.sev4',
    ],
    [
      'a missing emergency channel',
      minimal().replace('  emergency_channel: C0EMERGENCY\n', ''),
      'slack.emergency_channel',
    ],
    [
      'an empty escalation',
      minimal({ escalation: '  []' }).replace('escalation:\n  []', 'escalation: []'),
      'escalation',
    ],
    [
      'a bad backup store',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "/var/backups", prefix: s, retention_days: 7, rpo_minutes: 60 }',
      }),
      'environments.staging.backups.store',
    ],
    [
      'fractional retention days',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1.5, rpo_minutes: 60 }',
      }),
      'environments.staging.backups.retention_days',
    ],
    [
      'zero rpo',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 0 }',
      }),
      'environments.staging.backups.rpo_minutes',
    ],
    [
      'an unknown approval action',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60 }\n    require_approval: [restore, reboot]',
      }),
      'environments.staging.require_approval[1]',
    ],
    [
      'a list where a map belongs',
      minimal({ roles: '  - oncall' }).replace('roles:\n  - oncall', 'roles: [oncall]'),
      'roles',
    ],
    [
      'a schedule that is not cron',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60, schedule: "every 6 hours" }',
      }),
      'environments.staging.backups.schedule',
    ],
    [
      'a cron field out of range',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60, schedule: "0 24 * * *" }',
      }),
      'environments.staging.backups.schedule',
    ],
    [
      'a drill schedule that is neither cron nor off',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60, drill_schedule: never }',
      }),
      'environments.staging.backups.drill_schedule',
    ],
    [
      'zero rto',
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60, rto_minutes: 0 }',
      }),
      'environments.staging.backups.rto_minutes',
    ],
  ])('%s', (_what, text, path) => {
    const e = parseError(text);
    expect(e.problems.length).toBeGreaterThanOrEqual(1);
    const escaped = path.replace(/[.[\]]/g, '\\$&');
    expect(e.problems.some((p) => new RegExp(`(^|[ :])${escaped}: `).test(p))).toBe(true);
  });

  it('different mistakes in one file are reported together, one line each', () => {
    const text = minimal({
      roles:
        '  oncall: { slack_users: [U0ONCALL], pagerduty_routing_key: rk-x, pager: yes }\n  engineering_lead: { slack_users: [U0LEAD], pagerduty_routing_key: rk-y }',
      approvals: '  approver_roles: [engineering_lead]\n  expire_minutes: soon',
    });
    const e = parseError(text);
    expect(e.problems).toHaveLength(2);
    expect(e.problems.filter((p) => p.includes('roles.oncall.pager: unknown key'))).toHaveLength(1);
    expect(e.problems.filter((p) => p.includes('approvals.expire_minutes: '))).toHaveLength(1);
  });

  it('invalid YAML is one line', () => {
    const e = parseError('slack: [unclosed\n  - x: {');
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/not valid YAML/);
  });

  it('an empty file is refused', () => {
    const e = parseError('');
    expect(e.problems).toHaveLength(1);
  });
});

describe('parseConfigText: escalation and role cross-checks', () => {
  it('an escalation step naming an unknown role is refused with that role named', () => {
    const e = parseError(
      minimal({ escalation: '  - { after_minutes: 0, notify: oncall }\n  - { after_minutes: 5, notify: cfo }' }),
    );
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('escalation[1].notify');
    expect(e.problems[0]).toContain('"cfo"');
  });

  it('out-of-order steps are refused', () => {
    const e = parseError(
      minimal({
        escalation: '  - { after_minutes: 15, notify: oncall }\n  - { after_minutes: 5, notify: engineering_lead }',
      }),
    );
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('escalation[1].after_minutes');
  });

  it('steps at the same minute are in order', () => {
    const file = parseConfigText(
      minimal({
        escalation: '  - { after_minutes: 0, notify: oncall }\n  - { after_minutes: 0, notify: engineering_lead }',
      }),
      {},
    );
    expect(file.escalation.map((s) => s.after_minutes)).toEqual([0, 0]);
  });

  it('fractional minutes are accepted everywhere minutes are', () => {
    const file = parseConfigText(
      minimal({
        escalation: '  - { after_minutes: 0, notify: oncall }\n  - { after_minutes: 0.05, notify: engineering_lead }',
        severities:
          '  sev1: { page: true, respond_minutes: 0.25 }\n  sev2: { page: true, respond_minutes: 15 }\n  sev3: { page: false, respond_minutes: 60 }\n  sev4: { page: false, respond_minutes: 1440 }',
        approvals: '  approver_roles: [engineering_lead]\n  expire_minutes: 0.5',
      }),
      {},
    );
    expect(file.escalation[1]?.after_minutes).toBe(0.05);
    expect(file.severities.sev1.respond_minutes).toBe(0.25);
    expect(file.approvals.expire_minutes).toBe(0.5);
  });

  it('an approver role that does not exist is refused', () => {
    const e = parseError(minimal({ approvals: '  approver_roles: [engineering_lead, cfo]\n  expire_minutes: 30' }));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('approvals.approver_roles[1]');
    expect(e.problems[0]).toContain('cfo');
  });
});

describe('parseConfigText: permissions.responder_roles', () => {
  it('is optional: left out, every role is a responder (checked where it is used)', () => {
    expect(parseConfigText(minimal(), {}).permissions).toBeUndefined();
  });

  it('takes role names', () => {
    const file = parseConfigText(minimal({ extra: 'permissions:\n  responder_roles: [oncall]' }), {});
    expect(file.permissions).toEqual({ responder_roles: ['oncall'] });
  });

  it('a role that does not exist is refused, with its path and the roles there are', () => {
    const e = parseError(minimal({ extra: 'permissions:\n  responder_roles: [oncall, sre]' }));
    expect(e.problems).toEqual([
      'config: permissions.responder_roles[1]: unknown role "sre" (roles: oncall, engineering_lead)',
    ]);
  });

  it('an empty list and unknown keys are refused, each naming its path', () => {
    const empty = parseError(minimal({ extra: 'permissions:\n  responder_roles: []' }));
    expect(empty.problems).toHaveLength(1);
    expect(empty.problems[0]).toMatch(/^config: permissions\.responder_roles: must name at least one role/);
    const unknown = parseError(minimal({ extra: 'permissions:\n  responder_roles: [oncall]\n  approvers: [cto]' }));
    expect(unknown.problems).toEqual(['config: permissions.approvers: unknown key']);
  });
});

describe('parseConfigText: two environments never share a store and prefix', () => {
  const env = (name: string, store: string, prefix: string) =>
    [
      `  ${name}:`,
      `    database: { url: "postgres://u:p@h/${name}" }`,
      `    backups: { store: "${store}", prefix: ${prefix}, retention_days: 7, rpo_minutes: 60 }`,
    ].join('\n');
  const environments = (...envs: string[]) => minimal({ environments: envs.join('\n') });

  it('the same folder and prefix is refused, naming both environments and the key path', () => {
    const e = parseError(environments(env('production', 'file:///b', 'shop'), env('staging', 'file:///b', 'shop')));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^config: environments\.staging\.backups: same store and prefix as /);
    expect(e.problems[0]).toContain('as environments.production.backups (file:///b, prefix shop)');
    expect(e.problems[0]).toContain("production's retention would delete staging's backups");
  });

  it('spellings of one folder or one S3 prefix collide: trailing slash, dot segments, bucket case', () => {
    const pairs = [
      ['file:///var/backups/', 'file:///var/backups'],
      ['file:///var/backups', 'file:///var/./old/../backups//'],
      ['s3://bucket/prod/', 's3://bucket/prod'],
      ['s3://bucket/prod/', 's3://bucket//prod/'],
      ['s3://bucket/', 's3://bucket/'],
    ];
    for (const [a, b] of pairs) {
      const e = parseError(environments(env('production', a!, 'shop'), env('staging', b!, 'shop')));
      expect(e.problems, `${a} vs ${b}`).toHaveLength(1);
      expect(e.problems[0]).toContain('environments.staging.backups: same store and prefix as environments.production');
    }
  });

  it('three environments on one store and prefix: each later one is named against the first', () => {
    const e = parseError(environments(...['a', 'b', 'c'].map((n) => env(n, 'file:///x', 'p'))));
    const paths = e.problems.map((p) => p.split(':')[1]?.trim());
    expect(paths).toEqual(['environments.b.backups', 'environments.c.backups']);
  });

  it('the same store with other prefixes, or the same prefix in other stores, is fine', () => {
    const file = parseConfigText(
      environments(
        env('production', 's3://bucket/backups/', 'production'),
        env('staging', 's3://bucket/backups/', 'staging'),
        env('qa', 's3://bucket/qa/', 'production'),
        env('dev', 'file:///var/backups/production', 'production'),
      ),
      {},
    );
    expect(Object.keys(file.environments)).toEqual(['production', 'staging', 'qa', 'dev']);
  });
});

describe('parseConfigText: backup schedules', () => {
  it('takes cron with seconds and drill_schedule: off', () => {
    const file = parseConfigText(
      minimal({
        environments:
          '  staging:\n    database: { url: "postgres://u:p@h/db" }\n    backups: { store: "file:///b", prefix: s, retention_days: 1, rpo_minutes: 60, schedule: "*/5 * * * * *", drill_schedule: "off" }',
      }),
      {},
    );
    expect(file.environments.staging?.backups).toMatchObject({
      schedule: '*/5 * * * * *',
      drill_schedule: 'off',
      rto_minutes: 60,
    });
  });
});

describe('readConfig: environment', () => {
  it('loads the example with only the required variables and applies the documented defaults', () => {
    const config = readConfig(BASE_ENV);
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBe('postgres://localhost:5432/lifeline');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.slack.apiUrl).toBe('https://slack.com/api/');
    expect(config.pagerdutyEventsUrl).toBe('https://events.pagerduty.com/v2/enqueue');
    expect(config.processRole).toBe('all');
    expect(config.slack.botToken).toBe(BASE_ENV.SLACK_BOT_TOKEN);
    expect(config.slack.signingSecret).toBe(BASE_ENV.SLACK_SIGNING_SECRET);
    expect(config.slack.appToken).toBeUndefined();
    expect(config.configPath).toBe(EXAMPLE_PATH);
    expect(config.file.roles.cto?.pagerduty_routing_key).toBe(EXAMPLE_ENV.PD_KEY_CTO);
  });

  it('LIFELINE_CONFIG defaults to ./lifeline.yml', () => {
    const env: Record<string, string> = { ...BASE_ENV };
    delete env.LIFELINE_CONFIG;
    const dir = mkdtempSync(join(tmpdir(), 'lifeline-unit-'));
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      // No file there yet: the error names LIFELINE_CONFIG and the default path.
      const e = configError(() => readConfig(env));
      expect(e.problems).toHaveLength(1);
      expect(e.problems[0]).toContain('LIFELINE_CONFIG');
      expect(e.problems[0]).toContain('./lifeline.yml');
      writeFileSync(join(dir, 'lifeline.yml'), EXAMPLE_TEXT);
      expect(readConfig(env).configPath).toBe('./lifeline.yml');
    } finally {
      process.chdir(cwd);
    }
  });

  it('takes every variable that is set', () => {
    const config = readConfig({
      ...BASE_ENV,
      PORT: '8080',
      DATABASE_URL: 'postgres://lifeline:pw@pg:5432/ll',
      REDIS_URL: 'redis://redis:6380',
      SLACK_API_URL: 'http://127.0.0.1:9999/api',
      PAGERDUTY_EVENTS_URL: 'http://127.0.0.1:9998/v2/enqueue',
      LIFELINE_ROLE: 'worker',
    });
    expect(config.port).toBe(8080);
    expect(config.databaseUrl).toBe('postgres://lifeline:pw@pg:5432/ll');
    expect(config.redisUrl).toBe('redis://redis:6380');
    expect(config.slack.apiUrl).toBe('http://127.0.0.1:9999/api/');
    expect(config.pagerdutyEventsUrl).toBe('http://127.0.0.1:9998/v2/enqueue');
    expect(config.processRole).toBe('worker');
  });

  it('LIFELINE_RPO_WATCH_SECONDS: 60 by default, at most 60 (at least once a minute, as the README promises)', () => {
    expect(readConfig(BASE_ENV).recovery.rpoWatchSeconds).toBe(60);
    expect(readConfig({ ...BASE_ENV, LIFELINE_RPO_WATCH_SECONDS: '5' }).recovery.rpoWatchSeconds).toBe(5);
    const e = configError(() => readConfig({ ...BASE_ENV, LIFELINE_RPO_WATCH_SECONDS: '120' }));
    expect(e.problems).toEqual([expect.stringMatching(/^LIFELINE_RPO_WATCH_SECONDS: .*at least once a minute/)]);
  });

  it('LIFELINE_RECONCILE_SECONDS: 60 by default, fractions allowed, 1 to 60 (lost work must be back within 2 minutes)', () => {
    expect(readConfig(BASE_ENV).reconcileSeconds).toBe(60);
    expect(readConfig({ ...BASE_ENV, LIFELINE_RECONCILE_SECONDS: '2.5' }).reconcileSeconds).toBe(2.5);
    expect(configError(() => readConfig({ ...BASE_ENV, LIFELINE_RECONCILE_SECONDS: '61' })).problems).toEqual([
      expect.stringMatching(/^LIFELINE_RECONCILE_SECONDS: must be 60 or less: .*within 2 minutes/),
    ]);
    expect(configError(() => readConfig({ ...BASE_ENV, LIFELINE_RECONCILE_SECONDS: '0.5' })).problems).toEqual([
      'LIFELINE_RECONCILE_SECONDS: must be at least 1',
    ]);
    expect(configError(() => readConfig({ ...BASE_ENV, LIFELINE_RECONCILE_SECONDS: 'soon' })).problems).toEqual([
      expect.stringMatching(/^LIFELINE_RECONCILE_SECONDS: /),
    ]);
  });

  it('LIFELINE_JOB_LEASE_SECONDS (30) and LIFELINE_STEP_DEADLINE_MINUTES (30, fractional) are read and bounded', () => {
    expect(readConfig(BASE_ENV).recovery).toMatchObject({ jobLeaseMs: 30_000, stepDeadlineMs: 30 * 60_000 });
    const set = readConfig({ ...BASE_ENV, LIFELINE_JOB_LEASE_SECONDS: '2', LIFELINE_STEP_DEADLINE_MINUTES: '0.5' });
    expect(set.recovery).toMatchObject({ jobLeaseMs: 2_000, stepDeadlineMs: 30_000 });
    const wrong = { ...BASE_ENV, LIFELINE_JOB_LEASE_SECONDS: '0.5', LIFELINE_STEP_DEADLINE_MINUTES: '0' };
    const e = configError(() => readConfig(wrong));
    expect(e.problems).toEqual([
      expect.stringMatching(/^LIFELINE_JOB_LEASE_SECONDS: /),
      expect.stringMatching(/^LIFELINE_STEP_DEADLINE_MINUTES: /),
    ]);
  });

  it('empty variables count as unset', () => {
    const config = readConfig({ ...BASE_ENV, PORT: '', DATABASE_URL: '', LIFELINE_ROLE: '' });
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBe('postgres://localhost:5432/lifeline');
    expect(config.processRole).toBe('all');
  });

  it('the result is deeply frozen', () => {
    const config = readConfig(BASE_ENV);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.slack)).toBe(true);
    expect(Object.isFrozen(config.file)).toBe(true);
    expect(Object.isFrozen(config.file.roles)).toBe(true);
    expect(Object.isFrozen(config.file.roles.oncall)).toBe(true);
    expect(Object.isFrozen(config.file.roles.oncall?.slack_users)).toBe(true);
    expect(Object.isFrozen(config.file.escalation)).toBe(true);
    expect(Object.isFrozen(config.file.escalation[2])).toBe(true);
    expect(Object.isFrozen(config.file.environments.production?.database.verify)).toBe(true);
    expect(Object.isFrozen(config.secrets)).toBe(true);
    // ESM is strict mode: writing to a frozen object throws.
    expect(() => {
      (config.file.escalation[0] as { after_minutes: number }).after_minutes = 99;
    }).toThrow(TypeError);
    expect(() => {
      (config.file.escalation as unknown as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.file.escalation[0]?.after_minutes).toBe(0);
  });

  it('collects every secret for the logger', () => {
    const config = readConfig({
      ...BASE_ENV,
      DATABASE_URL: 'postgres://lifeline:own%40db-pw@pg/ll',
      SLACK_APP_TOKEN: 'xapp-1-app-token',
      METRICS_TOKEN: 'metrics-token-0123456789',
    });
    expect([...config.secrets].sort()).toEqual(
      [
        BASE_ENV.SLACK_BOT_TOKEN,
        BASE_ENV.SLACK_SIGNING_SECRET,
        'xapp-1-app-token',
        EXAMPLE_ENV.PD_KEY_ONCALL,
        EXAMPLE_ENV.PD_KEY_LEAD,
        EXAMPLE_ENV.PD_KEY_CTO,
        EXAMPLE_ENV.PD_KEY_CEO,
        'own@db-pw',
        'metrics-token-0123456789',
        'prod-s3cret-pw',
        'staging-s3cret-pw',
      ].sort(),
    );
  });

  it('METRICS_TOKEN: unset by default, taken when set, and a short one is refused by name', () => {
    expect(readConfig(BASE_ENV).metricsToken).toBeUndefined();
    const token = 'metrics-token-0123456789';
    expect(readConfig({ ...BASE_ENV, METRICS_TOKEN: token }).metricsToken).toBe(token);
    const e = configError(() => readConfig({ ...BASE_ENV, METRICS_TOKEN: 'short' }));
    expect(e.problems).toEqual(['METRICS_TOKEN: must be at least 16 characters (a random secret)']);
  });

  it('a missing SLACK_BOT_TOKEN is named', () => {
    const env: Record<string, string> = { ...BASE_ENV };
    delete env.SLACK_BOT_TOKEN;
    const e = configError(() => readConfig(env));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^SLACK_BOT_TOKEN: /);
  });

  it('SLACK_SIGNING_SECRET is required in HTTP mode', () => {
    const env: Record<string, string> = { ...BASE_ENV };
    delete env.SLACK_SIGNING_SECRET;
    const e = configError(() => readConfig(env));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^SLACK_SIGNING_SECRET: /);
    const bot = configError(() => readConfig({ ...env, LIFELINE_ROLE: 'bot' }));
    expect(bot.problems[0]).toMatch(/^SLACK_SIGNING_SECRET: /);
  });

  it('SLACK_SIGNING_SECRET is not required in Socket Mode', () => {
    const env: Record<string, string> = { ...BASE_ENV, SLACK_APP_TOKEN: 'xapp-1-A0-socket' };
    delete env.SLACK_SIGNING_SECRET;
    const config = readConfig(env);
    expect(config.slack.appToken).toBe('xapp-1-A0-socket');
    expect(config.slack.signingSecret).toBeUndefined();
  });

  it.each(['abc', '0', '70000', '3000.5', '-1', '80x'])('PORT=%s is refused and named', (port) => {
    const e = configError(() => readConfig({ ...BASE_ENV, PORT: port }));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^PORT: /);
  });

  it('a bad LIFELINE_ROLE is named', () => {
    const e = configError(() => readConfig({ ...BASE_ENV, LIFELINE_ROLE: 'admin' }));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^LIFELINE_ROLE: /);
    expect(e.problems[0]).toContain('all, bot or worker');
  });

  it('bad URLs are named', () => {
    const e = configError(() => readConfig({ ...BASE_ENV, SLACK_API_URL: 'not a url', PAGERDUTY_EVENTS_URL: 'nope' }));
    expect(e.problems).toHaveLength(2);
    expect(e.problems.some((p) => p.startsWith('SLACK_API_URL: '))).toBe(true);
    expect(e.problems.some((p) => p.startsWith('PAGERDUTY_EVENTS_URL: '))).toBe(true);
  });

  it('several environment mistakes are reported together, one line each', () => {
    const env: Record<string, string> = { ...BASE_ENV, PORT: 'abc', LIFELINE_ROLE: 'boss' };
    delete env.SLACK_BOT_TOKEN;
    const e = configError(() => readConfig(env));
    expect(e.problems).toHaveLength(3);
    expect(e.problems.map((p) => p.split(':')[0]).sort()).toEqual(['LIFELINE_ROLE', 'PORT', 'SLACK_BOT_TOKEN']);
  });

  it('a config-file mistake found through readConfig names the key and the variable', () => {
    const env: Record<string, string> = { ...BASE_ENV };
    delete env.PD_KEY_CEO;
    const e = configError(() => readConfig(env));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toContain('roles.ceo.pagerduty_routing_key');
    expect(e.problems[0]).toContain('PD_KEY_CEO');
  });

  it('an unreadable config file names LIFELINE_CONFIG', () => {
    const e = configError(() => readConfig({ ...BASE_ENV, LIFELINE_CONFIG: '/nonexistent/lifeline.yml' }));
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^LIFELINE_CONFIG: /);
    expect(e.problems[0]).toContain('/nonexistent/lifeline.yml');
  });
});

describe('statuspage:', () => {
  const page = (body: string) => minimal({ extra: `statuspage:\n${body}`, environments: undefined }) + '\n';

  it('is optional: without it there is no status page', () => {
    expect(parseConfigText(minimal(), EXAMPLE_ENV).statuspage).toBeUndefined();
  });

  it('takes the page, its key, a component per env and auto_for, with variables interpolated', () => {
    const text = page(
      '  page_id: "${SP_PAGE}"\n  api_key: "${SP_KEY}"\n  components: { staging: "${SP_STAGING}" }\n  auto_for: [sev1, sev2]',
    );
    const file = parseConfigText(text, { ...EXAMPLE_ENV, SP_PAGE: 'pg1', SP_KEY: 'sp-key-123', SP_STAGING: 'cmp1' });
    expect(file.statuspage).toEqual({
      page_id: 'pg1',
      api_key: 'sp-key-123',
      components: { staging: 'cmp1' },
      auto_for: ['sev1', 'sev2'],
    });
  });

  it('defaults components to none and auto_for to no severity', () => {
    const file = parseConfigText(page('  page_id: pg1\n  api_key: k1234'), EXAMPLE_ENV);
    expect(file.statuspage).toEqual({ page_id: 'pg1', api_key: 'k1234', components: {}, auto_for: [] });
  });

  it('refuses, each by name: a missing key, an unknown env, a bad severity and an unknown setting', () => {
    const e = parseError(
      page('  page_id: pg1\n  components: { production: c1 }\n  auto_for: [sev9]\n  impact: critical'),
    );
    expect(e.problems).toEqual(
      expect.arrayContaining([
        'config: statuspage.api_key: is required',
        'config: statuspage.auto_for[0]: must be sev1, sev2, sev3 or sev4',
        'config: statuspage.impact: unknown key',
      ]),
    );
    const unknownEnv = parseError(page('  page_id: pg1\n  api_key: k1234\n  components: { production: c1 }'));
    expect(unknownEnv.problems).toEqual([
      'config: statuspage.components.production: unknown environment "production" (environments: staging)',
    ]);
  });

  it('STATUSPAGE_API_URL: Atlassian by default, taken when set, refused by name when not a URL', () => {
    expect(readConfig(BASE_ENV).statuspageApiUrl).toBe('https://api.statuspage.io/v1');
    const local = 'http://127.0.0.1:4010/v1';
    expect(readConfig({ ...BASE_ENV, STATUSPAGE_API_URL: local }).statuspageApiUrl).toBe(local);
    const e = configError(() => readConfig({ ...BASE_ENV, STATUSPAGE_API_URL: 'not a url' }));
    expect(e.problems).toEqual(['STATUSPAGE_API_URL: must be a URL']);
  });

  it('VERCEL_*: no token and api.vercel.com by default; the token is a secret the logger scrubs', () => {
    expect(readConfig(BASE_ENV).vercel).toEqual({
      token: undefined,
      teamId: undefined,
      apiUrl: 'https://api.vercel.com',
    });
    const config = readConfig({
      ...BASE_ENV,
      VERCEL_TOKEN: 'vercel-token-0123456789',
      VERCEL_TEAM_ID: 'team_abc',
      VERCEL_API_URL: 'http://127.0.0.1:4020',
    });
    expect(config.vercel).toEqual({
      token: 'vercel-token-0123456789',
      teamId: 'team_abc',
      apiUrl: 'http://127.0.0.1:4020',
    });
    expect(config.secrets).toContain('vercel-token-0123456789');
    expect(config.secrets).not.toContain('team_abc');
    const e = configError(() => readConfig({ ...BASE_ENV, VERCEL_API_URL: 'not a url' }));
    expect(e.problems).toEqual(['VERCEL_API_URL: must be a URL']);
  });

  it('counts the API key among the secrets the logger scrubs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lifeline-statuspage-config-'));
    const path = join(dir, 'lifeline.yml');
    writeFileSync(path, `${EXAMPLE_TEXT}\nstatuspage:\n  page_id: pg1\n  api_key: sp-api-key-0123456789\n`);
    const config = readConfig({ ...BASE_ENV, LIFELINE_CONFIG: path });
    expect(config.secrets).toContain('sp-api-key-0123456789');
    expect(config.secrets).not.toContain('pg1');
  });
});

describe('parseConfigText: alerts', () => {
  const alerts = (body: string) => minimal({ extra: `alerts:\n${body}` });

  it('absent by default; present with its defaults when only the token is given', () => {
    expect(parseConfigText(minimal(), EXAMPLE_ENV).alerts).toBeUndefined();
    const file = parseConfigText(alerts('  token: "${ALERTS_TOKEN}"'), { ALERTS_TOKEN: 'alerts-token-0123456789' });
    expect(file.alerts).toEqual({
      token: 'alerts-token-0123456789',
      severity_map: {},
      cloudwatch_severity: 'sev2',
      auto_resolve: true,
      health_check_seconds: 30,
    });
  });

  it("takes the contract's example as it stands", () => {
    const file = parseConfigText(
      alerts(
        '  token: "${ALERTS_TOKEN}"\n  severity_map: { critical: sev1, warning: sev3 }\n  cloudwatch_severity: sev2\n' +
          '  auto_resolve: true\n  health_check_seconds: 30',
      ),
      { ALERTS_TOKEN: 'alerts-token-0123456789' },
    );
    expect(file.alerts?.severity_map).toEqual({ critical: 'sev1', warning: 'sev3' });
  });

  it('the token is required in the section, and a short one is refused by name', () => {
    expect(parseError(alerts('  auto_resolve: false')).problems).toEqual(['config: alerts.token: is required']);
    expect(parseError(alerts('  token: short')).problems).toEqual([
      'config: alerts.token: must be at least 16 characters (a random secret)',
    ]);
  });

  it('unknown keys and wrong values name their path', () => {
    const e = parseError(
      alerts(
        '  token: alerts-token-0123456789\n  severity_map: { critical: sev9 }\n  cloudwatch_severity: high\n' +
          '  auto_resolve: sometimes\n  health_check_seconds: 0\n  webhook: x',
      ),
    );
    expect(e.problems).toEqual(
      expect.arrayContaining([
        'config: alerts.webhook: unknown key',
        'config: alerts.severity_map.critical: must be sev1, sev2, sev3 or sev4',
        'config: alerts.cloudwatch_severity: must be sev1, sev2, sev3 or sev4',
        expect.stringMatching(/^config: alerts\.auto_resolve: /),
        expect.stringMatching(/^config: alerts\.health_check_seconds: /),
      ]),
    );
    expect(e.problems).toHaveLength(5);
  });

  it('the token joins the secrets the logger scrubs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lifeline-config-alerts-'));
    const path = join(dir, 'lifeline.yml');
    writeFileSync(path, alerts('  token: "${ALERTS_TOKEN}"'));
    const config = readConfig({ ...BASE_ENV, LIFELINE_CONFIG: path, ALERTS_TOKEN: 'alerts-token-0123456789' });
    expect(config.secrets).toContain('alerts-token-0123456789');
  });
});
