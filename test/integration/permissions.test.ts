// Who may do what, enforced by the services themselves: the real IncidentService and
// RecoveryService on the real PostgreSQL, driven through the real /incident and /dr tables as Slack, the CLI and the
// API drive them. Slack is MemoryChat; the queues are recorders, so "nothing was started" is visible.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { MemoryChat } from '../../src/adapters/slack/memory.js';
import { tokenIssuer } from '../../src/delivery/api/bot.js';
import { latestAudit, type AuditEntry } from '../../src/domain/audit/store.js';
import { drCommand } from '../../src/delivery/commands/dr.js';
import { incidentCommand } from '../../src/delivery/commands/incident.js';
import { execute, type SlashCommand } from '../../src/delivery/commands/registry.js';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { createPool, type Db } from '../../src/shared/db/pool.js';
import { UserError } from '../../src/shared/errors.js';
import { SYSTEM_ACTOR } from '../../src/domain/access/permissions.js';
import type { EscalationTimers } from '../../src/domain/incidents/timers.js';
import { IncidentService } from '../../src/domain/incidents/service.js';
import { StatusPageService } from '../../src/domain/incidents/statuspage.js';
import { MemoryStatuspage } from '../../src/adapters/statuspage/memory.js';
import { createLogger } from '../../src/shared/log.js';
import { createMetrics } from '../../src/shared/metrics.js';
import type { QueryWhat } from '../../src/domain/recovery/queries.js';
import { RecoveryService } from '../../src/domain/recovery/service.js';
import { loadRunbooks } from '../../src/domain/runbooks/definitions.js';
import { RunbookService } from '../../src/domain/runbooks/service.js';
import { createSlackIncidentNotifier } from '../../src/delivery/slack/incident-notifier.js';
import { createSlackRecoveryNotifier } from '../../src/delivery/slack/recovery-notifier.js';
import { saidText } from '../../src/delivery/slack/blocks.js';
import { person } from '../../src/shared/text.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testConfigYaml, USERS } from '../support/test-config.js';

const EMERGENCY = 'C0EMERGENCY';
const RESPONDERS = 'oncall, engineering_lead, cto, ceo';
const ENVIRONMENTS = `  staging:
    database: { url: "postgres://127.0.0.1:5432/lifeline_no_such_app_db", verify: [SELECT 1] }
    backups: { store: "file:///tmp/lifeline-permissions-test", prefix: staging, retention_days: 7, rpo_minutes: 1440 }
    ecs: { cluster: staging-cluster, services: [api], log_group: /ecs/staging/api }
    require_approval: [restore, scale, redeploy]
runbooks:
  failover:
    title: Fail over
    steps:
      - confirm: "switch the region by hand"`;

function fileConfig(extraYaml = ''): FileConfig {
  return parseConfigText(testConfigYaml({ environmentsYaml: ENVIRONMENTS, extraYaml }), {
    PD_KEY_ONCALL: 'rk-oncall-perm-000000',
    PD_KEY_LEAD: 'rk-lead-perm-00000000',
    PD_KEY_CTO: 'rk-cto-perm-000000000',
    PD_KEY_CEO: 'rk-ceo-perm-000000000',
  });
}

interface Lifeline {
  readonly incidents: IncidentService;
  readonly recovery: RecoveryService;
  readonly commands: { readonly incident: SlashCommand; readonly dr: SlashCommand };
  /** What reached the queues and the lookup worker: requests planned, timers set, lookups handed over. */
  readonly started: {
    planned: number[];
    timers: number;
    followUps: string[];
    lookups: QueryWhat[];
    statusPage: string[];
  };
  readonly chat: MemoryChat;
}

let testDb: TestDatabase;
let db: Db;

function lifeline(file: FileConfig): Lifeline {
  const log = createLogger('silent', []);
  const chat = new MemoryChat();
  const started: Lifeline['started'] = { planned: [], timers: 0, followUps: [], lookups: [], statusPage: [] };
  const timers: EscalationTimers = {
    schedule: async (steps) => void (started.timers += steps.length),
    cancel: async () => undefined,
    followUp: async (incident, action) => void started.followUps.push(`${action}:INC-${incident}`),
  };
  const notifier = createSlackIncidentNotifier(chat, file);
  const statusPage: StatusPageService = new StatusPageService({
    db,
    file: { ...file, statuspage: { page_id: 'perm', api_key: 'sp-perm-key', components: {}, auto_for: [] } },
    port: new MemoryStatuspage(),
    triggers: { trigger: async (incident, key) => void started.statusPage.push(`${key}:INC-${incident}`) },
    notifier,
    incidents: { find: (ref) => incidents.find(ref) },
    log,
  });
  const incidents: IncidentService = new IncidentService({ db, file, notifier, timers, metrics: createMetrics(), log });
  const recovery = new RecoveryService({
    db,
    file,
    notifier: createSlackRecoveryNotifier(chat, { keepText: async () => undefined, keepPlan: async () => undefined }),
    queue: {
      plan: async (job) => void started.planned.push(job),
      run: async () => undefined,
      expireAt: async () => undefined,
    },
    log,
  });
  const query = async (what: QueryWhat) => void started.lookups.push(what);
  const commands = {
    incident: incidentCommand({ incidents, statusPage, file }),
    dr: drCommand({ db, file, recovery, tokens: tokenIssuer(db), query, runbooks: runbookService(file) }),
  };
  return { incidents, recovery, chat, started, commands };
}

/** The config's runbooks, on a service whose triggers and messages go nowhere (a refused run reaches neither). */
function runbookService(file: FileConfig): RunbookService {
  const queue = { run: async () => undefined, expireAt: async () => undefined };
  const log = createLogger('silent', []);
  return new RunbookService({
    db,
    file,
    runbooks: loadRunbooks(file),
    queue,
    showProgress: async () => undefined,
    log,
  });
}

async function refusalOf(work: Promise<unknown>): Promise<UserError | undefined> {
  return work.then(
    () => undefined,
    (err: unknown) => {
      if (err instanceof UserError) return err;
      throw err;
    },
  );
}

/** Runs a command as Slack would; resolves with its refusal, if any. */
function run(l: Lifeline, command: 'incident' | 'dr', text: string, user: string): Promise<UserError | undefined> {
  const ctx = { userId: user, channelId: EMERGENCY, responseUrl: 'http://127.0.0.1:9/response' };
  return refusalOf(execute(l.commands[command], text, ctx));
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.query<Record<string, unknown>>(sql)).rows;
}

/** Everything a command could change, to compare before and after a refusal. */
async function everything(l: Lifeline): Promise<string> {
  return JSON.stringify({
    incidents: await rows('SELECT * FROM incidents ORDER BY number'),
    events: await rows('SELECT id, incident, actor, kind, detail FROM incident_events ORDER BY id'),
    steps: await rows('SELECT id, state FROM escalation_steps ORDER BY id'),
    jobs: await rows('SELECT number, state, cancel_requested_by FROM recovery_jobs ORDER BY number'),
    statusPageCalls: await rows('SELECT id FROM statuspage_calls ORDER BY id'),
    started: l.started,
    chat: l.chat.calls.length,
  });
}

async function notPermittedAudit(): Promise<AuditEntry[]> {
  return (await latestAudit(db, undefined, 100)).filter((e) => e.action === 'not_permitted').reverse();
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = createPool(testDb.url, createLogger('silent', []));
  await migrate(db);
});

afterAll(async () => {
  await db?.end();
  await testDb?.drop();
});

beforeEach(async () => {
  // Each test starts with no open incident and no active job (the audit trail is append-only and stays).
  await db.query(`UPDATE incidents SET resolved_at = now(), resolved_by = 'test' WHERE resolved_at IS NULL`);
  await db.query(
    `UPDATE recovery_jobs SET state = 'cancelled', finished_at = now()
      WHERE state IN ('planning', 'awaiting_approval', 'queued', 'running')`,
  );
});

describe('the command tables say who may run each entry, and the services hold to it', () => {
  // One valid use of each entry, by a user in no role ({ID}: an open SEV1). A new entry without a line here fails the
  // first test.
  const RESTORE = '/dr restore <env> list|latest|file <name>|snapshot <snapshot-id>';
  const SAMPLES: Record<string, { command: 'incident' | 'dr'; text: string }> = {
    '/incident sev1|sev2|sev3|sev4 <title>': { command: 'incident', text: 'sev3 Search is slow' },
    '/incident ack [ID]': { command: 'incident', text: 'ack {ID}' },
    '/incident update [ID] <text>': { command: 'incident', text: 'update {ID} p95 at 4 s' },
    '/incident severity [ID] sev1..sev4': { command: 'incident', text: 'severity {ID} sev4' },
    '/incident resolve [ID] [note]': { command: 'incident', text: 'resolve {ID} fixed' },
    '/incident statuspage [ID] investigating|identified|monitoring|resolved <message>': {
      command: 'incident',
      text: 'statuspage {ID} identified We found the cause.',
    },
    '/incident list': { command: 'incident', text: 'list' },
    '/incident status [ID]': { command: 'incident', text: 'status {ID}' },
    '/incident postmortem ID': { command: 'incident', text: 'postmortem {ID}' },
    '/incident help': { command: 'incident', text: 'help' },
    [RESTORE]: { command: 'dr', text: 'restore staging latest' },
    '/dr scale <env> <service> <count>': { command: 'dr', text: 'scale staging api 2' },
    '/dr redeploy <env> <service>': { command: 'dr', text: 'redeploy staging api' },
    '/dr logs <env> <service> [--since 15m] [--filter TEXT]': { command: 'dr', text: 'logs staging api --since 5m' },
    '/dr status [env]': { command: 'dr', text: 'status staging' },
    '/dr jobs': { command: 'dr', text: 'jobs' },
    '/dr cancel <job-id>': { command: 'dr', text: 'cancel JOB-999' },
    '/dr audit [env]': { command: 'dr', text: 'audit staging' },
    '/dr backup <env>': { command: 'dr', text: 'backup staging' },
    '/dr backups <env>': { command: 'dr', text: 'backups staging' },
    '/dr drill <env>': { command: 'dr', text: 'drill staging' },
    '/dr token [revoke]': { command: 'dr', text: 'token' },
    '/dr runbook list|show <name>': { command: 'dr', text: 'runbook show failover' },
    '/dr run <runbook> [--dry-run] | run report RUN-<n>': { command: 'dr', text: 'run failover --dry-run' },
    '/dr help': { command: 'dr', text: 'help' },
  };

  test('a user in no role is refused exactly the responders-only entries; a refusal changes nothing', async () => {
    const l = lifeline(fileConfig());
    const declared = { severity: 'sev1', title: 'Checkout down', actor: USERS.oncall, channel: EMERGENCY } as const;
    const { incident } = await l.incidents.declare(declared);
    const entries = Object.values(l.commands).flatMap((c) =>
      c.entries.map((entry) => ({ key: `${c.name} ${entry.usage}`, entry })),
    );
    expect(entries.map((e) => e.key).sort()).toEqual(Object.keys(SAMPLES).sort());

    const refusedEntries: string[] = [];
    for (const { key, entry } of entries) {
      const sample = SAMPLES[key]!;
      const before = await everything(l);
      const err = await run(l, sample.command, sample.text.replace('{ID}', `INC-${incident.number}`), USERS.other);
      if (err?.code === 'not_permitted') {
        refusedEntries.push(key);
        expect(err.message, key).toMatch(new RegExp(`^Only responders \\(${RESPONDERS}\\) may `));
        expect(await everything(l), `${key} changed something although refused`).toBe(before);
      } else {
        expect(err?.code, `${key}: ${err?.message}`).not.toBe('not_permitted');
      }
      expect(refusedEntries.includes(key), key).toBe(entry.access === 'responders');
    }
    expect(refusedEntries).toEqual([
      '/incident ack [ID]',
      '/incident severity [ID] sev1..sev4',
      '/incident resolve [ID] [note]',
      '/incident statuspage [ID] investigating|identified|monitoring|resolved <message>',
      RESTORE,
      '/dr scale <env> <service> <count>',
      '/dr redeploy <env> <service>',
      '/dr logs <env> <service> [--since 15m] [--filter TEXT]',
      '/dr audit [env]',
      '/dr backup <env>',
      '/dr drill <env>',
      '/dr run <runbook> [--dry-run] | run report RUN-<n>',
    ]);
    // The lookups anyone may make were handed over; the refused logs lookup was not.
    expect(l.started.lookups.map((q) => q.kind)).toEqual(['status', 'backups']);
    expect((await l.incidents.find({ number: incident.number })).severity).toBe('sev1');
    // /dr refusals are on the audit trail, each with the refused user and what they tried.
    const audited = await notPermittedAudit();
    const envs = [...Array.from({ length: 7 }, () => 'staging'), null];
    expect(audited.map((e) => [e.actor, e.env])).toEqual(envs.map((env) => [USERS.other, env]));
    expect(audited[0]!.detail).toBe(
      `Only responders (${RESPONDERS}) may request a job (restore staging database from the latest backup).`,
    );
    expect(audited.map((e) => e.detail.replace(/^Only responders \([^)]*\) may /, ''))).toEqual([
      'request a job (restore staging database from the latest backup).',
      'request a job (scale staging api to 2).',
      'request a job (redeploy staging api).',
      'read the logs of staging api.',
      'read the audit trail.',
      'request a job (backup of staging).',
      'request a job (restore drill of staging).',
      'dry-run the runbook failover.',
    ]);
  });

  test('`/dr restore <env> list` stays open to anyone: it is a lookup, not a job', async () => {
    const l = lifeline(fileConfig());
    expect(await run(l, 'dr', 'restore staging list', USERS.other)).toBeUndefined();
    expect(l.started.lookups).toEqual([{ kind: 'restore-list', env: 'staging' }]);
  });

  test('the same commands by a responder go through: the services refuse by role, not by command', async () => {
    const l = lifeline(fileConfig());
    await l.incidents.declare({ severity: 'sev3', title: 'Disk filling', actor: USERS.other, channel: EMERGENCY });
    for (const text of ['ack', 'severity sev4', 'resolve freed space']) {
      expect(await run(l, 'incident', text, USERS.oncall), text).toBeUndefined();
    }
    for (const text of ['scale staging api 2', 'logs staging api', 'audit']) {
      expect(await run(l, 'dr', text, USERS.oncall), text).toBeUndefined();
    }
    expect(l.started.planned).toHaveLength(1);
    expect(l.started.lookups.map((q) => q.kind)).toEqual(['logs']);
  });
});

describe('cancelling a job', () => {
  test("another's job: refused to a user in no role (audited, untouched); a non-approver responder may", async () => {
    const l = lifeline(fileConfig());
    const redeploy = { kind: 'redeploy', service: 'api' } as const;
    const job = await l.recovery.request({ env: 'staging', params: redeploy, actor: USERS.lead, channel: EMERGENCY });
    const before = await everything(l);
    const err = await refusalOf(l.recovery.cancel(job.number, USERS.other));
    expect(err?.code).toBe('not_permitted');
    const expected = `Only responders (${RESPONDERS}) may cancel JOB-${job.number}, which <@${USERS.lead}> requested.`;
    // Slack shows the requester as a mention, as before; the refusal itself holds them as a person.
    expect(saidText(err?.said ?? []).text).toBe(expected);
    expect(err?.said).toContainEqual(person(USERS.lead));
    expect(await everything(l)).toBe(before);
    expect((await notPermittedAudit()).at(-1)).toMatchObject({ actor: USERS.other, env: 'staging', job: job.number });

    expect(l.recovery.approvers()).not.toContain(USERS.oncall);
    const { job: cancelled, immediate } = await l.recovery.cancel(job.number, USERS.oncall);
    expect(immediate).toBe(true);
    expect(cancelled.state).toBe('cancelled');
  });

  test('their own job: the requester may cancel it even when no longer a responder', async () => {
    const everyone = lifeline(fileConfig());
    const scale = { kind: 'scale', service: 'api', count: 3 } as const;
    const job = await everyone.recovery.request({ env: 'staging', params: scale, actor: USERS.oncall, channel: 'C0X' });
    const narrowed = lifeline(fileConfig('permissions:\n  responder_roles: [engineering_lead, cto]'));
    expect((await narrowed.recovery.cancel(job.number, USERS.oncall)).job.state).toBe('cancelled');
  });
});

describe('permissions.responder_roles', () => {
  test('only the listed roles respond: on-call, left out, is refused a job and an acknowledgement', async () => {
    const l = lifeline(fileConfig('permissions:\n  responder_roles: [engineering_lead, cto]'));
    const declared = { severity: 'sev3', title: 'Narrowed', actor: USERS.oncall, channel: EMERGENCY } as const;
    const { incident } = await l.incidents.declare(declared);
    const ack = await run(l, 'incident', `ack INC-${incident.number}`, USERS.oncall);
    expect(ack?.message).toBe(`Only responders (engineering_lead, cto) may acknowledge INC-${incident.number}.`);
    const backup = await run(l, 'dr', 'backup staging', USERS.oncall);
    expect(backup?.message).toBe('Only responders (engineering_lead, cto) may request a job (backup of staging).');
    expect(l.started.planned).toEqual([]);
    expect(await run(l, 'incident', `ack INC-${incident.number}`, USERS.lead)).toBeUndefined();
    expect(await run(l, 'dr', 'backup staging', USERS.cto)).toBeUndefined();
    expect(l.started.planned).toHaveLength(1);
  });

  test('Lifeline itself (scheduled backups and drills) is never refused, whatever the list says', async () => {
    const l = lifeline(fileConfig('permissions:\n  responder_roles: [cto]'));
    const drill = { kind: 'drill', trigger: 'schedule' } as const;
    const job = await l.recovery.request({ env: 'staging', params: drill, actor: SYSTEM_ACTOR, channel: EMERGENCY });
    expect(job.requestedBy).toBe(SYSTEM_ACTOR);
    expect(l.started.planned).toEqual([job.number]);
  });
});
