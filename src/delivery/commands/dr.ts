// `/dr`: recovery jobs. Parsing and every check that needs only the config happen here, before anything is
// recorded; the work itself always runs on a worker.
import type { FileConfig, EnvironmentConfig } from '../../shared/config.js';
import { latestAudit } from '../../domain/audit/store.js';
import type { Db } from '../../shared/db/pool.js';
import { UserError } from '../../shared/errors.js';
import { parseBackupName } from '../../domain/backups/names.js';
import { describeJob, jobId, parseJobId, type JobParams } from '../../domain/recovery/model.js';
import type { QueryRequest, QueryWhat } from '../../domain/recovery/queries.js';
import type { RecoveryService } from '../../domain/recovery/service.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import type { IssuedToken } from '../../domain/access/tokens.js';
import { formatUtc } from '../../shared/format.js';
import { code, joinMd, line, md } from '../slack/blocks.js';
import { renderAudit, renderJobs } from '../slack/recovery-replies.js';
import { badCommand, helpText, subcommand, words } from './registry.js';
import { runbookEntries } from './runbooks.js';
import type { CommandContext, SlashCommand, Subcommand } from './registry.js';
import type { Reply } from '../slack/reply.js';

/**
 * What the /dr table works with. Read only inside `parse` and `run`, never while the table is built, so the table
 * (and its help) can be built where none of it exists: the `lifeline` CLI's help.
 */
export interface DrDeps {
  readonly db: Db;
  readonly file: FileConfig;
  readonly recovery: RecoveryService;
  /**
   * Runs a read-only lookup. In Slack it is handed to a worker that answers at the response_url later (queryOnWorker:
   * undefined now); the API answers in its response (the answer itself).
   */
  readonly query: (request: QueryWhat, ctx: CommandContext) => Promise<Reply | undefined>;
  readonly tokens: TokenIssuer;
  readonly runbooks: RunbookService;
}

/** Personal API tokens, for `/dr token` (src/domain/access/tokens.ts). */
export interface TokenIssuer {
  create(userId: string): Promise<IssuedToken>;
  revokeAll(userId: string): Promise<number>;
}

/** Slack's way to look something up: a worker answers at the request's response_url. */
export function queryOnWorker(enqueue: (request: QueryRequest) => Promise<void>): DrDeps['query'] {
  return async (request, ctx) => {
    if (!ctx.responseUrl) throw new UserError('bad_command', 'This request has no response_url to answer at.');
    await enqueue({ ...request, responseUrl: ctx.responseUrl, user: ctx.userId, channel: ctx.channelId });
    return undefined;
  };
}

const MAX_SINCE_MS = 24 * 3_600_000;

function environment(file: FileConfig, name: string | undefined): { name: string; env: EnvironmentConfig } {
  if (!name) throw badCommand('Name the environment.');
  const env = file.environments[name];
  if (!env)
    throw badCommand(`Unknown environment "${name}" (configured: ${Object.keys(file.environments).join(', ')}).`);
  return { name, env };
}

function ecsService(
  file: FileConfig,
  envName: string | undefined,
  service: string | undefined,
): { env: string; service: string; config: EnvironmentConfig } {
  const { name, env } = environment(file, envName);
  if (!env.ecs) throw badCommand(`Environment ${name} has no ECS services configured.`);
  if (!service) throw badCommand(`Name the service (${env.ecs.services.join(', ')}).`);
  if (!env.ecs.services.includes(service))
    throw badCommand(`Unknown service "${service}" in ${name} (configured: ${env.ecs.services.join(', ')}).`);
  return { env: name, service, config: env };
}

/** `15m`, `2h`, `90s` → milliseconds; up to 24 h. */
export function parseSince(text: string): number {
  const match = /^([1-9][0-9]{0,5})([smh])$/.exec(text);
  if (!match) throw badCommand(`--since takes a number with s, m or h, like 15m (got "${text}").`);
  const ms = Number(match[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
  if (ms > MAX_SINCE_MS) throw badCommand('--since goes back at most 24h.');
  return ms;
}

function noMore(rest: string[]): void {
  if (rest.length > 0) throw badCommand(`Unexpected text "${rest.join(' ')}".`);
}

/** `<env>` and nothing else. */
function envOnly(file: FileConfig, rest: string): string {
  const [envName, ...extra] = words(rest);
  const { name } = environment(file, envName);
  noMore(extra);
  return name;
}

const SNAPSHOT_ID = /^(rds:)?[A-Za-z][A-Za-z0-9-]{0,254}$/;

export function parseRestore(
  file: FileConfig,
  rest: string,
): { env: string; params: JobParams } | { env: string; list: true } {
  const [envName, mode, arg, ...extra] = words(rest);
  const { name, env } = environment(file, envName);
  noMore(extra);
  switch (mode) {
    case 'list':
      if (arg !== undefined) noMore([arg]);
      return { env: name, list: true };
    case 'latest':
      if (arg !== undefined) noMore([arg]);
      return { env: name, params: { kind: 'restore', source: { type: 'latest' } } };
    case 'file':
      if (!arg)
        throw badCommand(
          'Name the backup file, for example `file ' + `${env.backups.prefix}_20240115_120000.sql.gz\`.`,
        );
      // Only names of the README's pattern: no paths, nothing else from the store.
      if (!parseBackupName(env.backups.prefix, arg)) {
        throw badCommand(
          `"${arg}" is not a backup name of ${name}: expected ${env.backups.prefix}_YYYYMMDD_HHMMSS.sql.gz or .dump (or a _pre-restore_ safety copy).`,
        );
      }
      return { env: name, params: { kind: 'restore', source: { type: 'file', name: arg } } };
    case 'snapshot':
      if (!env.database.rds_instance)
        throw badCommand(`Environment ${name} has no rds_instance; snapshot restores need one.`);
      if (!arg || !SNAPSHOT_ID.test(arg)) throw badCommand('Name the RDS snapshot id (letters, digits and hyphens).');
      return { env: name, params: { kind: 'restore', source: { type: 'snapshot', id: arg } } };
    default:
      throw badCommand(
        mode
          ? `Unknown restore source "${mode}": use list, latest, file <name> or snapshot <id>.`
          : 'Say list, latest, file <name> or snapshot <id>.',
      );
  }
}

export function parseLogs(
  file: FileConfig,
  rest: string,
): { env: string; service: string; sinceMs: number; filter: string | undefined } {
  const tokens = words(rest);
  const [envName, service, ...options] = tokens;
  const target = ecsService(file, envName, service);
  if (!target.config.ecs?.log_group) throw badCommand(`Environment ${target.env} has no ecs.log_group configured.`);
  let sinceMs = 15 * 60_000;
  let filter: string | undefined;
  for (let i = 0; i < options.length; i++) {
    const option = options[i];
    if (option === '--since') {
      sinceMs = parseSince(options[++i] ?? '');
    } else if (option === '--filter') {
      filter = options.slice(i + 1).join(' ');
      if (filter === '') throw badCommand('--filter needs some text.');
      break;
    } else {
      throw badCommand(`Unexpected "${option}": use --since 15m and/or --filter TEXT.`);
    }
  }
  return { env: target.env, service: target.service, sinceMs, filter };
}

/** What every /dr entry works with: the deps, and the two ways an entry hands its work on. */
interface DrTools {
  readonly deps: DrDeps;
  /** Records a job for a worker and says so; the plan and its progress follow in the channel. */
  readonly requestJob: (env: string, params: JobParams, ctx: CommandContext) => Promise<Reply>;
  readonly lookup: (ctx: CommandContext, request: QueryWhat) => Promise<Reply | undefined>;
}

function drTools(deps: DrDeps): DrTools {
  const requestJob = async (env: string, params: JobParams, ctx: CommandContext): Promise<Reply> => {
    const job = await deps.recovery.request({
      env,
      params,
      actor: ctx.userId,
      channel: ctx.channelId,
      responseUrl: ctx.responseUrl,
    });
    const approval = job.needsApproval
      ? ' It needs approval: the plan with Approve/Reject is being posted here.'
      : ' The plan and live progress follow here.';
    return {
      ...line(md`${jobId(job.number)}: ${describeJob(env, params)} requested.${approval}`),
      job: { number: job.number, started: true },
    };
  };
  return { deps, requestJob, lookup: (ctx, request) => deps.query(request, ctx) };
}

/** restore, scale, redeploy: the jobs that change a running environment. */
function changeEntries({ deps, requestJob, lookup }: DrTools): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'restore <env> list|latest|file <name>|snapshot <snapshot-id>',
      access: 'responders',
      accessNote: 'responders; `list`: anyone',
      summary: 'list backups and snapshots, or restore one (into a fresh database, swapped in; approval if required)',
      matches: (w) => w === 'restore',
      effect: 'write',
      parse: (rest) => parseRestore(deps.file, rest),
      effectOf: (args) => ('list' in args ? 'read' : 'write'),
      run: async (args, ctx) =>
        'list' in args ? lookup(ctx, { kind: 'restore-list', env: args.env }) : requestJob(args.env, args.params, ctx),
    }),
    subcommand({
      usage: 'scale <env> <service> <count>',
      access: 'responders',
      summary: 'set the desired task count and wait until it runs',
      matches: (w) => w === 'scale',
      effect: 'write',
      parse(rest) {
        const [envName, service, count, ...extra] = words(rest);
        const target = ecsService(deps.file, envName, service);
        noMore(extra);
        const max = target.config.ecs!.max_count;
        if (count === undefined) throw badCommand('Say how many tasks.');
        if (!/^[0-9]{1,4}$/.test(count) || Number(count) > max)
          throw badCommand(`The count must be a whole number from 0 to ${max} (got "${count}").`);
        return {
          env: target.env,
          params: { kind: 'scale', service: target.service, count: Number(count) } as JobParams,
        };
      },
      run: (args, ctx) => requestJob(args.env, args.params, ctx),
    }),
    subcommand({
      usage: 'redeploy <env> <service>',
      access: 'responders',
      summary: 'force a new deployment and follow its rollout',
      matches: (w) => w === 'redeploy',
      effect: 'write',
      parse(rest) {
        const [envName, service, ...extra] = words(rest);
        const target = ecsService(deps.file, envName, service);
        noMore(extra);
        return { env: target.env, params: { kind: 'redeploy', service: target.service } as JobParams };
      },
      run: (args, ctx) => requestJob(args.env, args.params, ctx),
    }),
  ];
}

/** logs, status, jobs: reading what runs. */
function watchEntries({ deps, lookup }: DrTools): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'logs <env> <service> [--since 15m] [--filter TEXT]',
      access: 'responders',
      summary: 'recent log lines of a service, to you alone (at most 5 messages)',
      matches: (w) => w === 'logs',
      effect: 'read',
      parse: (rest) => parseLogs(deps.file, rest),
      async run(args, ctx) {
        const { env, service, sinceMs, filter } = args;
        await deps.recovery.requireResponder(ctx.userId, `read the logs of ${env} ${service}`, { env });
        return lookup(ctx, { kind: 'logs', env, service, sinceMs, filter });
      },
    }),
    subcommand({
      usage: 'status [env]',
      access: 'anyone',
      summary: 'database, newest backup against RPO, ECS services, health URL',
      matches: (w) => w === 'status',
      effect: 'read',
      parse: (rest) => optionalEnv(deps.file, rest),
      run: (args, ctx) => lookup(ctx, { kind: 'status', env: args.env }),
    }),
    subcommand({
      usage: 'jobs',
      access: 'anyone',
      summary: 'running and waiting jobs',
      matches: (w) => w === 'jobs',
      effect: 'read',
      parse: (rest) => noMore(words(rest)),
      run: async () => renderJobs(await deps.recovery.activeJobs()),
    }),
  ];
}

/** `[env]`: every environment when left out. */
function optionalEnv(file: FileConfig, rest: string): { env: string | undefined } {
  const [envName, ...extra] = words(rest);
  noMore(extra);
  return { env: envName === undefined ? undefined : environment(file, envName).name };
}

/** cancel, audit: stopping a job, and what was done. */
function oversightEntries({ deps }: DrTools): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'cancel <job-id>',
      access: 'anyone',
      accessNote: "your own job: anyone; another's: responders only",
      summary: 'stop a job: at once if its step changed nothing yet, else before the next',
      matches: (w) => w === 'cancel',
      effect: 'write',
      parse(rest) {
        const [id, ...extra] = words(rest);
        noMore(extra);
        const number = parseJobId(id ?? '');
        if (number === undefined) throw badCommand('Name the job, for example JOB-7.');
        return { number };
      },
      async run(args, ctx) {
        const { job, immediate, running } = await deps.recovery.cancel(args.number, ctx.userId);
        const id = jobId(job.number);
        const cleaned = md`then what the job left behind is cleaned up.`;
        const said = immediate
          ? md`${id} is cancelled; it had not started.`
          : running?.interruptible
            ? md`${id} is being stopped: "${running.name}" is interrupted now (it has changed nothing yet), ${cleaned}`
            : running
              ? md`${id} stops before its next step ("${running.name}" is running, and is never cut in half); ${cleaned}`
              : md`${id} stops before its next step; ${cleaned}`;
        return { ...line(said), job: { number: job.number, started: false } };
      },
    }),
    subcommand({
      usage: 'audit [env]',
      access: 'responders',
      summary: 'the latest 20 entries of the audit trail',
      matches: (w) => w === 'audit',
      effect: 'read',
      parse: (rest) => optionalEnv(deps.file, rest),
      async run(args, ctx) {
        await deps.recovery.requireResponder(ctx.userId, 'read the audit trail', { env: args.env });
        return renderAudit(await latestAudit(deps.db, args.env, 20), args.env);
      },
    }),
  ];
}

/** backup, backups, drill: taking backups, and proving they restore. */
function backupEntries({ deps, requestJob, lookup }: DrTools): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'backup <env>',
      access: 'responders',
      summary: 'take a backup now (pg_dump into the store, checked); one at a time per env',
      matches: (w) => w === 'backup',
      effect: 'write',
      parse: (rest) => ({
        env: envOnly(deps.file, rest),
        params: { kind: 'backup', trigger: 'command' } as JobParams,
      }),
      run: (args, ctx) => requestJob(args.env, args.params, ctx),
    }),
    subcommand({
      usage: 'backups <env>',
      access: 'anyone',
      summary: 'the backups with age, size, checksum and last drill',
      matches: (w) => w === 'backups',
      effect: 'read',
      parse: (rest) => ({ env: envOnly(deps.file, rest) }),
      run: (args, ctx) => lookup(ctx, { kind: 'backups', env: args.env }),
    }),
    subcommand({
      usage: 'drill <env>',
      access: 'responders',
      summary: 'restore the latest backup into a scratch database, verify, report RTO and RPO',
      matches: (w) => w === 'drill',
      effect: 'write',
      parse: (rest) => ({
        env: envOnly(deps.file, rest),
        params: { kind: 'drill', trigger: 'command' } as JobParams,
      }),
      run: (args, ctx) => requestJob(args.env, args.params, ctx),
    }),
  ];
}

function tokenEntry(deps: DrDeps): Subcommand<unknown> {
  return subcommand({
    usage: 'token [revoke]',
    access: 'anyone',
    summary: 'a personal API token for the `lifeline` CLI, shown once to you alone; `revoke` revokes all of yours',
    matches: (w) => w === 'token',
    effect: 'write',
    parse(rest) {
      const [what, ...extra] = words(rest);
      noMore(extra);
      if (what !== undefined && what.toLowerCase() !== 'revoke') {
        throw badCommand(`Unexpected "${what}": say \`token\` or \`token revoke\`.`);
      }
      return { revoke: what !== undefined };
    },
    run: (args, ctx) => (args.revoke ? revokeTokens(deps.tokens, ctx) : issueToken(deps.tokens, ctx)),
  });
}

async function revokeTokens(tokens: TokenIssuer, ctx: CommandContext): Promise<Reply> {
  const revoked = await tokens.revokeAll(ctx.userId);
  if (revoked === 0) return line(md`You had no live API token; nothing was revoked.`);
  const what = revoked === 1 ? 'API token' : `${revoked} API tokens`;
  return line(md`Revoked your ${what}; the CLI needs a new one.`);
}

async function issueToken(tokens: TokenIssuer, ctx: CommandContext): Promise<Reply> {
  // A stolen token must not be able to outlive its expiry or a revocation by minting its successor.
  if (ctx.viaApi) {
    throw new UserError(
      'not_permitted',
      'A token cannot make another one: run `/dr token` in Slack, ' +
        'or ask an operator for `lifeline-admin token create`.',
    );
  }
  const issued = await tokens.create(ctx.userId);
  const expires = formatUtc(issued.expiresAt);
  const address = md`\`LIFELINE_URL\` set to this Lifeline's address`;
  const settings = md`Give it to the CLI as \`LIFELINE_TOKEN\`, with ${address}.`;
  const revoke = md`It acts as you, under your permissions. \`/dr token revoke\` revokes all of yours.`;
  const shown = md`Your personal Lifeline API token, shown this once (it expires ${expires}):`;
  return line(joinMd([shown, code(issued.token), settings, revoke], '\n'));
}

export function drCommand(deps: DrDeps): SlashCommand {
  const tools = drTools(deps);
  const command: SlashCommand = {
    name: '/dr',
    summary:
      'disaster recovery: restores, backups, drills, ECS, logs, status, runbooks. Destructive jobs wait for an approver.',
    entries: [
      ...changeEntries(tools),
      ...watchEntries(tools),
      ...oversightEntries(tools),
      ...backupEntries(tools),
      ...runbookEntries({
        get db() {
          return deps.db;
        },
        get runbooks() {
          return deps.runbooks;
        },
        get recovery() {
          return deps.recovery;
        },
      }),
      tokenEntry(deps),
      subcommand({
        usage: 'help',
        access: 'anyone',
        summary: 'this list',
        matches: (w) => w === 'help',
        effect: 'local',
        parse: () => ({}),
        run: async () => line(md`${helpText(command)}`),
      }),
    ],
  };
  return command;
}
