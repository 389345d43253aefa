// Child processes under test: the real built Lifeline (node dist/main.js) and a bare Bolt app that only acks.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup, trackChild } from './cleanup.mjs';
import { createDatabase, createQueuePrefix, REDIS_URL } from './infra.mjs';
import { BOT_TOKEN, SIGNING_SECRET } from './slack-requests.mjs';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const BARE_APP = fileURLToPath(new URL('./bare-bolt-app.mjs', import.meta.url));

export const CHANNEL = 'C0EMERGENCY';
export const ROUTING_KEYS = {
  oncall: 'rk-oncall-bench0000000',
  engineering_lead: 'rk-lead-bench00000000',
  cto: 'rk-cto-bench000000000',
  ceo: 'rk-ceo-bench000000000',
};

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The default env's store holds one backup taken now: the RPO watch pages on-call about an empty or missing store (as the
 * README says), and a benchmark counting pages must see only its own. No drill either: the weekly default would restore
 * that stand-in backup if a run crossed Monday 03:00.
 */
function defaultEnvironments(dir) {
  const store = join(dir, 'backups');
  mkdirSync(store);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  writeFileSync(join(store, `staging_${stamp}.dump`), 'PGDMP');
  return `  staging:
    database: { url: "postgres://127.0.0.1:5432/staging", verify: [SELECT 1] }
    backups:
      { store: "file://${store}", prefix: staging, retention_days: 7, rpo_minutes: 1440, drill_schedule: "off" }`;
}

/**
 * Writes a lifeline.yml with the given escalation steps (minutes); removed at cleanup. `environmentsYaml` replaces
 * the default `environments:` entries (indented by two spaces); `extraYaml` is appended (top-level keys, `alerts:`).
 */
export function writeConfig(steps, { environmentsYaml, extraYaml = '' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-bench-'));
  onCleanup(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
  const environments = environmentsYaml ?? defaultEnvironments(dir);
  const path = join(dir, 'lifeline.yml');
  writeFileSync(
    path,
    `slack:
  emergency_channel: ${CHANNEL}
  allowed_channels: [${CHANNEL}]
roles:
  oncall:           { slack_users: [U0ONCALL], pagerduty_routing_key: "\${PD_KEY_ONCALL}" }
  engineering_lead: { slack_users: [U0LEAD],   pagerduty_routing_key: "\${PD_KEY_LEAD}" }
  cto:              { slack_users: [U0CTO],    pagerduty_routing_key: "\${PD_KEY_CTO}" }
  ceo:              { slack_users: [U0CEO],    pagerduty_routing_key: "\${PD_KEY_CEO}" }
escalation:
${steps.map((s) => `  - { after_minutes: ${s.after_minutes}, notify: ${s.notify} }`).join('\n')}
severities:
  sev1: { page: true,  respond_minutes: 0 }
  sev2: { page: true,  respond_minutes: 15 }
  sev3: { page: false, respond_minutes: 60 }
  sev4: { page: false, respond_minutes: 1440 }
approvals:
  approver_roles: [engineering_lead, cto]
  expire_minutes: 30
  allow_self_approval: false
environments:
${environments}
${extraYaml}`,
  );
  return path;
}

/** A child process whose output is drained (so it never blocks on a full pipe) and kept in a bounded tail. */
class Child {
  constructor(name, args, env) {
    this.name = name;
    this.tail = [];
    this.warnings = 0;
    this.errors = 0;
    this.firstProblems = [];
    this.exitCode = null;
    this.waiters = [];
    /** Extra per-line listeners (benchmarks read Lifeline's own log figures through these). */
    this.lineListeners = [];
    this.child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(this.child);
    let partial = '';
    const collect = (chunk) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.line(line);
    };
    this.child.stdout.on('data', collect);
    this.child.stderr.on('data', collect);
    this.child.on('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? `signal ${signal}` : -1);
      for (const w of this.waiters.splice(0)) w();
    });
    this.removeCleanup = onCleanup(`stop ${name} (pid ${this.child.pid})`, () => this.kill());
  }

  line(line) {
    if (line === '') return;
    this.tail.push(line);
    if (this.tail.length > 200) this.tail.shift();
    const level = /"level":(\d+)/.exec(line)?.[1];
    if (level === '40') this.warnings++;
    if (level === '50' || level === '60') this.errors++;
    if ((level === '40' || level === '50' || level === '60') && this.firstProblems.length < 5)
      this.firstProblems.push(line.slice(0, 400));
    for (const w of [...this.waiters]) w(line);
    for (const listener of this.lineListeners) listener(line);
  }

  /** Resolves when a line contains `text`; rejects on exit or after timeoutMs. */
  waitForLine(text, timeoutMs) {
    if (this.tail.some((l) => l.includes(text))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          finish(
            new Error(
              `${this.name} did not print "${text}" within ${timeoutMs} ms:\n${this.tail.slice(-20).join('\n')}`,
            ),
          ),
        timeoutMs,
      );
      const waiter = (line) => {
        if (this.exitCode !== null)
          return finish(new Error(`${this.name} exited (${this.exitCode}):\n${this.tail.slice(-20).join('\n')}`));
        if (line?.includes(text)) finish();
      };
      const finish = (err) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.push(waiter);
    });
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code. */
  async kill(graceMs = 12_000) {
    if (this.exitCode !== null) return this.exitCode;
    const exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    try {
      process.kill(this.child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    let timer;
    const forced = await Promise.race([
      exited.then(() => false),
      new Promise((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (forced && this.exitCode === null) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
    }
    return this.exitCode;
  }

  /** CPU time (user + system) the process has used so far, in ms; null where /proc is not available. */
  cpuMs() {
    const times = this.cpuTimes();
    return times === null ? null : times.user + times.system;
  }

  /** User and system (kernel: sockets, pipes) CPU time so far, in ms; null where /proc is not available. */
  cpuTimes() {
    try {
      const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command name: state is field 3, utime 14 and stime 15 (1-based, in clock ticks of 1/100 s).
      return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
    } catch {
      return null;
    }
  }

  /** Stops it now (SIGTERM, then SIGKILL) and returns its exit code. */
  async stop() {
    await this.removeCleanup();
    return this.exitCode;
  }
}

/**
 * Starts `node dist/main.js` in HTTP mode with the test-style env (plus `extraEnv`) and waits for "Lifeline started".
 */
export async function startLifeline({
  databaseUrl,
  queuePrefix,
  slackApiUrl,
  pagerdutyUrl,
  configPath,
  logLevel = 'info',
  extraEnv = {},
}) {
  // e.g. BENCH_LIFELINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles Lifeline under the benchmark's load.
  const nodeArgs = (process.env.BENCH_LIFELINE_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const env = {
    PAGERDUTY_EVENTS_URL: pagerdutyUrl,
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    LIFELINE_CONFIG: configPath,
    LIFELINE_QUEUE_PREFIX: queuePrefix,
    LIFELINE_ROLE: 'all',
    PD_KEY_ONCALL: ROUTING_KEYS.oncall,
    PD_KEY_LEAD: ROUTING_KEYS.engineering_lead,
    PD_KEY_CTO: ROUTING_KEYS.cto,
    PD_KEY_CEO: ROUTING_KEYS.ceo,
    LOG_LEVEL: logLevel,
    ...extraEnv,
  };
  return startSlackApp('lifeline', [...nodeArgs, MAIN], slackApiUrl, env, 'Lifeline started', 40_000);
}

/** Starts the bare Bolt app (acks /incident, nothing else) against the same fake Slack. */
export function startBareApp({ slackApiUrl }) {
  return startSlackApp('bare-bolt-app', [BARE_APP], slackApiUrl, {}, 'bare app started', 20_000);
}

/**
 * Starts `node <args>` as a Slack app on a free port (PORT, the bot token and signing secret, Slack at
 * `slackApiUrl`, then `env`) and waits for its `readyLine`; the child knows its port and events URL.
 */
async function startSlackApp(name, args, slackApiUrl, env, readyLine, limitMs) {
  const port = await freePort();
  const child = new Child(name, args, {
    PATH: process.env.PATH ?? '',
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slackApiUrl,
    PORT: String(port),
    ...env,
  });
  child.port = port;
  child.eventsUrl = `http://127.0.0.1:${port}/slack/events`;
  await child.waitForLine(readyLine, limitMs);
  return child;
}

/**
 * Lifeline on a state database and queue prefix of its own (named after `tag`, removed at cleanup), with a config of
 * `steps` (and `configOptions`, see writeConfig), on the fake Slack and PagerDuty. `beforeStart` runs just before the
 * process starts.
 */
export async function startOwnLifeline({
  tag,
  steps,
  slack,
  pagerduty,
  configOptions,
  extraEnv,
  beforeStart = () => {},
}) {
  const db = await createDatabase(tag);
  const queue = createQueuePrefix(tag);
  const configPath = writeConfig(steps, configOptions);
  beforeStart();
  const lifeline = await startLifeline({
    databaseUrl: db.url,
    queuePrefix: queue.prefix,
    slackApiUrl: slack.apiUrl,
    pagerdutyUrl: pagerduty.url,
    configPath,
    extraEnv,
  });
  return { db, queue, lifeline };
}
