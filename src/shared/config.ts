// The only module that reads process.env or the config file. Everything else receives the frozen Config.
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CronExpressionParser } from 'cron-parser';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { urlPassword } from './db/connection.js';

export const SEVERITIES = ['sev1', 'sev2', 'sev3', 'sev4'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const LIFELINE_ROLES = ['all', 'bot', 'worker'] as const;
export type ProcessRole = (typeof LIFELINE_ROLES)[number];

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

const minutes = z.number({ error: 'must be a number of minutes' }).nonnegative('must be 0 or more');
const nonEmpty = z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty');

/** Cron in UTC, the form BullMQ's job schedulers take (5 fields, or 6 with seconds first). */
const cron = nonEmpty.refine(
  (text) => {
    try {
      CronExpressionParser.parse(text, { tz: 'UTC' });
      return true;
    } catch {
      return false;
    }
  },
  { error: 'must be a cron expression (UTC), like "0 0,6,12,18 * * *"' },
);

const roleSchema = z.strictObject({
  slack_users: z.array(nonEmpty),
  pagerduty_routing_key: nonEmpty,
});

const environmentSchema = z.strictObject({
  database: z.strictObject({
    url: nonEmpty,
    rds_instance: nonEmpty.optional(),
    verify: z.array(nonEmpty).default([]),
  }),
  backups: z.strictObject({
    store: z.string().regex(/^(s3:\/\/[^/]+\/.*|file:\/\/\/.*)$/, 'must be s3://bucket/prefix/ or file:///folder'),
    prefix: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'must be letters, digits, _ or -'),
    retention_days: z.number().int().positive(),
    rpo_minutes: minutes.positive('must be more than 0'),
    schedule: cron.optional(),
    /** The plan's weekly restore test; `off` turns it off (`/dr drill` still works). */
    drill_schedule: z.union([z.literal('off'), cron]).default('0 3 * * 1'),
    /** The plan's RTO for the database (P0: 1 hour): what a drill's restore time is judged against. */
    rto_minutes: minutes.positive('must be more than 0').default(60),
  }),
  ecs: z
    .strictObject({
      cluster: nonEmpty,
      services: z.array(nonEmpty).min(1, 'must name at least one service'),
      log_group: nonEmpty.optional(),
      /** The most tasks /dr scale may ask for; a typo of 500 instead of 5 is refused. */
      max_count: z.number().int().min(1).max(1000).default(20),
    })
    .optional(),
  health_url: z.url({ error: 'must be a URL' }).optional(),
  require_approval: z.array(z.enum(['restore', 'scale', 'redeploy'])).default([]),
});

/**
 * Atlassian Statuspage: the page, its API key, a component per env, and who creates one alone.
 */
const statuspageSchema = z.strictObject({
  page_id: nonEmpty,
  api_key: nonEmpty,
  /** Env name → the Statuspage component id that shows it. */
  components: z.record(z.string(), nonEmpty).default({}),
  /** Severities whose declaration creates a status page incident by itself; others use /incident statuspage. */
  auto_for: z.array(z.enum(SEVERITIES, { error: 'must be sev1, sev2, sev3 or sev4' })).default([]),
});

/** Incident channels: a Slack channel per incident, archived some hours after resolve. */
const channelsSchema = z.strictObject({
  enabled: z.boolean().default(false),
  prefix: z
    .string({ error: 'must be a string' })
    .regex(/^[a-z0-9][a-z0-9_-]{0,19}$/, 'must be 1-20 characters: lower-case letters, digits, - and _')
    .default('inc'),
  /** Fractional hours allowed. */
  archive_after_hours: z.number({ error: 'must be a number of hours' }).min(0).max(8760).default(24),
});

/** Incident communication: a channel per incident, reminders and stakeholder summaries. */
const incidentsSchema = z.strictObject({
  channels: channelsSchema.optional(),
  /** Remind in the thread when no `/incident update` came in this long (fractional minutes allowed). */
  update_every_minutes: z
    .strictObject({
      sev1: minutes.positive('must be more than 0').optional(),
      sev2: minutes.positive('must be more than 0').optional(),
      sev3: minutes.positive('must be more than 0').optional(),
      sev4: minutes.positive('must be more than 0').optional(),
    })
    .optional(),
  /** A short summary in `channel` on declare, each update and resolve, for the listed severities. */
  stakeholders: z
    .strictObject({
      channel: nonEmpty,
      severities: z.array(z.enum(SEVERITIES, { error: 'must be sev1, sev2, sev3 or sev4' })).default(['sev1', 'sev2']),
    })
    .optional(),
});

/**
 * A runbook as the file holds it. Each step is `{<kind>: {...params}}` with an optional `id`; what a kind's params
 * may be is that kind's own schema (src/domain/runbooks/steps/), checked at startup by the runbooks module, which
 * names a bad step's path the same way.
 */
const runbookSchema = z.strictObject({
  title: nonEmpty,
  /** once: one approval for the whole run; each_step: one before every step but `confirm`. */
  approval: z.enum(['once', 'each_step'], { error: 'must be once or each_step' }).default('once'),
  /** A dry run by itself on this schedule (UTC), loud when it finds a gap. */
  dry_run_schedule: cron.optional(),
  steps: z
    .array(z.record(z.string(), z.unknown(), { error: 'must be a step: {<kind>: {...}}, with an optional id' }))
    .min(1, 'must have at least one step'),
});

const fileSchema = z.strictObject({
  slack: z.strictObject({
    emergency_channel: nonEmpty,
    allowed_channels: z.array(nonEmpty).min(1, 'must list at least one channel'),
  }),
  roles: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'role names are lower_snake_case'), roleSchema),
  escalation: z
    .array(z.strictObject({ after_minutes: minutes, notify: nonEmpty }))
    .min(1, 'must have at least one step'),
  severities: z.strictObject({
    sev1: z.strictObject({ page: z.boolean(), respond_minutes: minutes }),
    sev2: z.strictObject({ page: z.boolean(), respond_minutes: minutes }),
    sev3: z.strictObject({ page: z.boolean(), respond_minutes: minutes }),
    sev4: z.strictObject({ page: z.boolean(), respond_minutes: minutes }),
  }),
  /** Who may act on incidents and jobs; absent = every role under `roles` is a responder. */
  permissions: z
    .strictObject({
      responder_roles: z.array(nonEmpty).min(1, 'must name at least one role (leave permissions out for every role)'),
    })
    .optional(),
  approvals: z.strictObject({
    approver_roles: z.array(nonEmpty).min(1, 'must name at least one role'),
    expire_minutes: minutes.positive('must be more than 0'),
    allow_self_approval: z.boolean().default(false),
  }),
  environments: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'environment names are lower-case'), environmentSchema),
  statuspage: statuspageSchema.optional(),
  /** Incident communication: channels, reminders, stakeholder summaries. */
  incidents: incidentsSchema.optional(),
  /** Alerts in: absent = the /alerts endpoints answer 404. */
  alerts: z
    .strictObject({
      /** The bearer token Alertmanager and the EventBridge API destination send. */
      token: z.string({ error: 'must be a string' }).min(16, 'must be at least 16 characters (a random secret)'),
      /** `commonLabels.severity` value -> severity; a value not listed declares nothing. */
      severity_map: z.record(nonEmpty, z.enum(SEVERITIES, { error: 'must be sev1, sev2, sev3 or sev4' })).default({}),
      cloudwatch_severity: z.enum(SEVERITIES, { error: 'must be sev1, sev2, sev3 or sev4' }).default('sev2'),
      /** `resolved` / `OK` resolve the incident; false: they are noted on the timeline and in the thread. */
      auto_resolve: z.boolean().default(true),
      /** How often each env's health_url is probed (health checks read it). */
      health_check_seconds: z.number({ error: 'must be a number of seconds' }).min(1).max(3600).default(30),
    })
    .optional(),
  runbooks: z
    .record(
      z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'runbook names are lower-case letters, digits and -'),
      runbookSchema,
    )
    .default({}),
});

/** Keys that once existed, with what replaced them: a config that still has one is told, not just "unknown key". */
const RETIRED_KEYS: Readonly<Record<string, string>> = {
  cli_users:
    'no longer exists: the `lifeline` CLI acts as the owner of a personal API token ' +
    '(`/dr token` in Slack, or `lifeline-admin token create`); remove this key',
};

export type FileConfig = z.infer<typeof fileSchema>;
export type RoleConfig = z.infer<typeof roleSchema>;
export type EnvironmentConfig = z.infer<typeof environmentSchema>;
export type EscalationStep = FileConfig['escalation'][number];
export type StatuspageConfig = z.infer<typeof statuspageSchema>;
export type ChannelsConfig = z.infer<typeof channelsSchema>;
export type RunbookConfig = z.infer<typeof runbookSchema>;

export interface Config {
  readonly processRole: ProcessRole;
  readonly port: number;
  readonly slack: {
    readonly botToken: string;
    readonly signingSecret: string | undefined;
    readonly appToken: string | undefined;
    readonly apiUrl: string;
  };
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly queuePrefix: string;
  readonly pagerdutyEventsUrl: string;
  /** Atlassian Statuspage's REST base (`STATUSPAGE_API_URL`); used only when the file has `statuspage:`. */
  readonly statuspageApiUrl: string;
  /** Vercel's REST API, for the runbooks' vercel steps; a runbook with one needs the token. */
  readonly vercel: {
    readonly token: string | undefined;
    readonly teamId: string | undefined;
    readonly apiUrl: string;
  };
  readonly logLevel: string;
  readonly configPath: string;
  /** Seconds between reconcile passes (lost timers, triggers and job schedulers re-created from PostgreSQL/config). */
  readonly reconcileSeconds: number;
  readonly recovery: {
    /** Seconds between AWS status polls while a job waits (ECS rollouts, RDS snapshots). */
    readonly pollSeconds: number;
    readonly maxWaitSeconds: number;
    /** pg_restore -j for logical restores. */
    readonly restoreJobs: number;
    /** How often the RPO watch looks at every env's newest backup (at least once a minute, as the README promises). */
    readonly rpoWatchSeconds: number;
    /** How long a worker's claim on a running job lasts without a heartbeat; another worker takes over after it. */
    readonly jobLeaseMs: number;
    /** How long a job step may run unless its kind says otherwise (restores scale with the backup's size). */
    readonly stepDeadlineMs: number;
  };
  /** Bearer token `GET /metrics` requires; undefined = /metrics is open. */
  readonly metricsToken: string | undefined;
  readonly file: Readonly<FileConfig>;
  /** Every secret value, so the logger can scrub them wherever they appear. */
  readonly secrets: readonly string[];
}

type Env = Record<string, string | undefined>;

const envSchema = z.object({
  SLACK_BOT_TOKEN: nonEmpty,
  SLACK_SIGNING_SECRET: nonEmpty.optional(),
  SLACK_APP_TOKEN: nonEmpty.optional(),
  SLACK_API_URL: z.url({ error: 'must be a URL' }).default('https://slack.com/api/'),
  PORT: z.coerce
    .number({ error: 'must be a port number' })
    .int('must be a port number')
    .min(1)
    .max(65535)
    .default(3000),
  DATABASE_URL: nonEmpty.default('postgres://localhost:5432/lifeline'),
  REDIS_URL: nonEmpty.default('redis://127.0.0.1:6379'),
  LIFELINE_CONFIG: nonEmpty.default('./lifeline.yml'),
  LIFELINE_ROLE: z.enum(LIFELINE_ROLES, { error: 'must be all, bot or worker' }).default('all'),
  LIFELINE_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ or -')
    .default('lifeline'),
  PAGERDUTY_EVENTS_URL: z.url({ error: 'must be a URL' }).default('https://events.pagerduty.com/v2/enqueue'),
  STATUSPAGE_API_URL: z.url({ error: 'must be a URL' }).default('https://api.statuspage.io/v1'),
  VERCEL_TOKEN: nonEmpty.optional(),
  VERCEL_TEAM_ID: nonEmpty.optional(),
  VERCEL_API_URL: z.url({ error: 'must be a URL' }).default('https://api.vercel.com'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LIFELINE_AWS_POLL_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).positive().max(300).default(15),
  LIFELINE_AWS_MAX_WAIT_MINUTES: z.coerce
    .number({ error: 'must be a number of minutes' })
    .positive()
    .max(720)
    .default(60),
  LIFELINE_RESTORE_JOBS: z.coerce.number({ error: 'must be a whole number' }).int().min(1).max(16).default(2),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters (a random secret)').optional(),
  LIFELINE_RPO_WATCH_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(1)
    .max(60, 'must be 60 or less: the RPO watch runs at least once a minute')
    .default(60),
  // At most 60: after Redis loses its contents, everything must be back within 2 minutes (as the README says).
  LIFELINE_RECONCILE_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(1, 'must be at least 1')
    .max(60, 'must be 60 or less: lost timers and schedules must come back within 2 minutes')
    .default(60),
  // A test knob more than an operator's setting: tests shorten it so a take-over does not wait 30 s.
  LIFELINE_JOB_LEASE_SECONDS: z.coerce.number({ error: 'must be a number of seconds' }).min(1).max(300).default(30),
  LIFELINE_STEP_DEADLINE_MINUTES: z.coerce
    .number({ error: 'must be a number of minutes' })
    .positive()
    .max(24 * 60)
    .default(30),
});

/** Reads env and the YAML file once. Throws ConfigError with one line per mistake, each naming the setting. */
export function readConfig(env: Env = process.env): Config {
  // Empty strings count as unset, as in most shells' `VAR=` idiom.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const envResult = envSchema.safeParse(cleaned);
  if (!envResult.success) {
    throw new ConfigError(envResult.error.issues.map((i) => `${i.path.join('.')}: ${describeIssue(i)}`));
  }
  const e = envResult.data;
  const httpMode = e.SLACK_APP_TOKEN === undefined;
  if (httpMode && e.LIFELINE_ROLE !== 'worker' && e.SLACK_SIGNING_SECRET === undefined) {
    throw new ConfigError([
      'SLACK_SIGNING_SECRET: required in HTTP mode (set it, or set SLACK_APP_TOKEN for Socket Mode)',
    ]);
  }

  const file = loadConfigFile(e.LIFELINE_CONFIG, cleaned);
  const secrets = [
    e.SLACK_BOT_TOKEN,
    e.SLACK_SIGNING_SECRET,
    e.SLACK_APP_TOKEN,
    e.METRICS_TOKEN,
    e.VERCEL_TOKEN,
    file.alerts?.token,
    ...Object.values(file.roles).map((r) => r.pagerduty_routing_key),
    file.statuspage?.api_key,
    ...[e.DATABASE_URL, ...Object.values(file.environments).map((x) => x.database.url)].map(urlPassword),
    cleaned.AWS_SECRET_ACCESS_KEY,
    cleaned.AWS_SESSION_TOKEN,
  ].filter((s): s is string => typeof s === 'string' && s.length >= 4);

  return deepFreeze({
    processRole: e.LIFELINE_ROLE,
    port: e.PORT,
    slack: {
      botToken: e.SLACK_BOT_TOKEN,
      signingSecret: e.SLACK_SIGNING_SECRET,
      appToken: e.SLACK_APP_TOKEN,
      apiUrl: e.SLACK_API_URL.endsWith('/') ? e.SLACK_API_URL : `${e.SLACK_API_URL}/`,
    },
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.LIFELINE_QUEUE_PREFIX,
    pagerdutyEventsUrl: e.PAGERDUTY_EVENTS_URL,
    statuspageApiUrl: e.STATUSPAGE_API_URL,
    vercel: { token: e.VERCEL_TOKEN, teamId: e.VERCEL_TEAM_ID, apiUrl: e.VERCEL_API_URL },
    logLevel: e.LOG_LEVEL,
    configPath: e.LIFELINE_CONFIG,
    reconcileSeconds: e.LIFELINE_RECONCILE_SECONDS,
    recovery: {
      pollSeconds: e.LIFELINE_AWS_POLL_SECONDS,
      maxWaitSeconds: e.LIFELINE_AWS_MAX_WAIT_MINUTES * 60,
      restoreJobs: e.LIFELINE_RESTORE_JOBS,
      rpoWatchSeconds: e.LIFELINE_RPO_WATCH_SECONDS,
      jobLeaseMs: e.LIFELINE_JOB_LEASE_SECONDS * 1000,
      stepDeadlineMs: e.LIFELINE_STEP_DEADLINE_MINUTES * 60_000,
    },
    metricsToken: e.METRICS_TOKEN,
    file,
    secrets: [...new Set(secrets)],
  });
}

export function loadConfigFile(path: string, env: Env): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `LIFELINE_CONFIG: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    ]);
  }
  return parseConfigText(text, env, path);
}

export function parseConfigText(text: string, env: Env, source = 'config'): FileConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const problems: string[] = [];
  // Interpolate after parsing, on string values only, so a variable's content can never change the YAML structure.
  const interpolated = interpolate(raw, [], env, problems);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${source}: ${p}`));

  const result = fileSchema.safeParse(interpolated);
  if (!result.success) {
    throw new ConfigError(result.error.issues.flatMap((issue) => formatIssue(issue).map((p) => `${source}: ${p}`)));
  }
  const crossProblems = crossCheck(result.data);
  if (crossProblems.length > 0) throw new ConfigError(crossProblems.map((p) => `${source}: ${p}`));
  return result.data;
}

function interpolate(value: unknown, path: (string | number)[], env: Env, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      const replacement = env[name];
      if (replacement === undefined || replacement === '') {
        problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
        return '';
      }
      return replacement;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], env, problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], env, problems)]));
  }
  return value;
}

function crossCheck(file: FileConfig): string[] {
  const problems: string[] = [];
  const roleNames = new Set(Object.keys(file.roles));
  const seen = new Map<string, number>();
  file.escalation.forEach((step, i) => {
    if (!roleNames.has(step.notify)) {
      problems.push(`escalation[${i}].notify: unknown role "${step.notify}" (roles: ${[...roleNames].join(', ')})`);
    }
    const earlier = seen.get(step.notify);
    if (earlier !== undefined) {
      problems.push(`escalation[${i}].notify: role "${step.notify}" is already notified by escalation[${earlier}]`);
    }
    seen.set(step.notify, i);
    const previous = file.escalation[i - 1];
    if (previous !== undefined && step.after_minutes < previous.after_minutes) {
      problems.push(
        `escalation[${i}].after_minutes: steps must be in time order (${step.after_minutes} < ${previous.after_minutes})`,
      );
    }
  });
  file.approvals.approver_roles.forEach((role, i) => {
    if (!roleNames.has(role)) problems.push(`approvals.approver_roles[${i}]: unknown role "${role}"`);
  });
  file.permissions?.responder_roles.forEach((role, i) => {
    if (!roleNames.has(role)) {
      problems.push(`permissions.responder_roles[${i}]: unknown role "${role}" (roles: ${[...roleNames].join(', ')})`);
    }
  });
  for (const env of Object.keys(file.statuspage?.components ?? {})) {
    if (!(env in file.environments)) {
      const known = Object.keys(file.environments).join(', ');
      problems.push(`statuspage.components.${env}: unknown environment "${env}" (environments: ${known})`);
    }
  }
  problems.push(...sharedStoreProblems(file));
  if (!file.slack.allowed_channels.includes(file.slack.emergency_channel)) {
    // Buttons on the incident card are clicked in emergency_channel; refusing commands there would be a trap.
    problems.push(`slack.allowed_channels: must include emergency_channel ${file.slack.emergency_channel}`);
  }
  return problems;
}

/**
 * Two environments writing the same backup names into the same place would share `latest` and delete each other's
 * backups by their retention, so a store and prefix belong to one environment.
 */
function sharedStoreProblems(file: FileConfig): string[] {
  const problems: string[] = [];
  const owners = new Map<string, string>();
  for (const [name, env] of Object.entries(file.environments)) {
    const key = `${storeIdentity(env.backups.store)} ${env.backups.prefix}`;
    const owner = owners.get(key);
    if (owner === undefined) {
      owners.set(key, name);
      continue;
    }
    problems.push(
      `environments.${name}.backups: same store and prefix as environments.${owner}.backups ` +
        `(${env.backups.store}, prefix ${env.backups.prefix}): ${owner}'s retention would delete ${name}'s backups ` +
        `and \`latest\` would cross environments; give each environment its own store or prefix`,
    );
  }
  return problems;
}

/** One spelling per place: `file:///x/`, `file:///x` and `file:///a/../x` are one folder; s3 prefixes likewise. */
export function storeIdentity(store: string): string {
  try {
    if (store.startsWith('file:')) return `file://${resolvePath(fileURLToPath(store))}`;
    const url = new URL(store);
    const segments = decodeURIComponent(url.pathname)
      .split('/')
      .filter((s) => s !== '' && s !== '.');
    return `s3://${url.hostname.toLowerCase()}/${segments.join('/')}`;
  } catch {
    // A malformed URL is reported where the store is opened; compare it as written.
    return store;
  }
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    const retired = (key: string) => (issue.path.length === 0 ? RETIRED_KEYS[key] : undefined);
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: ${retired(key) ?? 'unknown key'}`);
  }
  return [`${formatPath(issue.path)}: ${describeIssue(issue)}`];
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required';
  return issue.message;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return (
    path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('') ||
    '(top level)'
  );
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
