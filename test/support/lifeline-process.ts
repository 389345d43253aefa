// Runs the real built Lifeline (node dist/main.js) as a child process, the way an operator would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testConfigYaml, USERS, type TestConfigOptions } from './test-config.js';
import { waitUntil } from './wait.js';

export const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const SIGNING_SECRET = 'test-signing-secret-0123456789';
export const BOT_TOKEN = 'xoxb-test-bot-token-0123456789';

export { USERS };
export const ROUTING_KEYS = {
  oncall: 'rk-oncall-000000000000',
  engineering_lead: 'rk-lead-0000000000000',
  cto: 'rk-cto-00000000000000',
  ceo: 'rk-ceo-00000000000000',
} as const;
export type { TestConfigOptions };

/** Writes a lifeline.yml for tests (roles U0ONCALL.., keys from env) and returns its path. */
export function writeTestConfig(options: TestConfigOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-cfg-'));
  const path = join(dir, 'lifeline.yml');
  writeFileSync(path, testConfigYaml(options));
  return path;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface LifelineProcessOptions {
  readonly databaseUrl: string;
  readonly queuePrefix: string;
  readonly slackApiUrl: string;
  readonly pagerdutyUrl: string;
  readonly configPath: string;
  readonly role?: 'all' | 'bot' | 'worker';
  readonly extraEnv?: Record<string, string>;
}

export class LifelineProcess {
  readonly output: string[] = [];
  private child: ChildProcess | undefined;
  exitCode: number | null = null;
  port = 0;
  private closed = true;

  constructor(private readonly options: LifelineProcessOptions) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get eventsUrl(): string {
    return `${this.baseUrl}/slack/events`;
  }

  env(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '',
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: this.options.slackApiUrl,
      PAGERDUTY_EVENTS_URL: this.options.pagerdutyUrl,
      DATABASE_URL: this.options.databaseUrl,
      REDIS_URL: process.env.LIFELINE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      LIFELINE_CONFIG: this.options.configPath,
      LIFELINE_QUEUE_PREFIX: this.options.queuePrefix,
      LIFELINE_ROLE: this.options.role ?? 'all',
      PORT: String(this.port),
      PD_KEY_ONCALL: ROUTING_KEYS.oncall,
      PD_KEY_LEAD: ROUTING_KEYS.engineering_lead,
      PD_KEY_CTO: ROUTING_KEYS.cto,
      PD_KEY_CEO: ROUTING_KEYS.ceo,
      LOG_LEVEL: 'info',
      ...this.options.extraEnv,
    };
  }

  /** The child's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True between start() and the child's exit. */
  get running(): boolean {
    return this.child !== undefined && this.exitCode === null;
  }

  private async spawnChild(): Promise<void> {
    this.port = this.port || (await freePort());
    this.exitCode = null;
    const child = spawn(process.execPath, [MAIN], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.closed = false;
    // Lines may be split across chunks; keep the unfinished tail until its newline arrives.
    const tails = { out: '', err: '' };
    const collector = (which: 'out' | 'err') => (chunk: Buffer) => {
      const parts = (tails[which] + chunk.toString('utf8')).split('\n');
      tails[which] = parts.pop() ?? '';
      this.output.push(...parts.filter((l) => l !== ''));
    };
    child.stdout!.on('data', collector('out'));
    child.stderr!.on('data', collector('err'));
    child.on('exit', (code) => (this.exitCode = code ?? -1));
    child.on('close', () => {
      for (const which of ['out', 'err'] as const) {
        if (tails[which] !== '') this.output.push(tails[which]);
        tails[which] = '';
      }
      this.closed = true;
    });
  }

  /** Starts the process expecting it to stop on its own (a config error, say); returns the exit code. */
  async runToExit(timeoutMs = 20_000): Promise<number> {
    await this.spawnChild();
    // 'close' comes after the last output, unlike 'exit'.
    await waitUntil('Lifeline to exit by itself', () => this.exitCode !== null && this.closed, timeoutMs);
    return this.exitCode!;
  }

  /** Starts the process and waits for its "Lifeline started" log line. */
  async start(timeoutMs = 20_000): Promise<this> {
    // Only this run's lines count: a restarted process keeps the earlier run's output.
    const from = this.output.length;
    await this.spawnChild();
    await waitUntil(
      'Lifeline to start',
      () => {
        if (this.exitCode !== null)
          throw new Error(`Lifeline exited with ${this.exitCode}:\n${this.output.join('\n')}`);
        return this.output.slice(from).some((l) => l.includes('Lifeline started'));
      },
      timeoutMs,
    );
    return this;
  }

  /** Sends a signal and waits for the exit; returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number> {
    if (!this.child || this.exitCode !== null) return this.exitCode ?? 0;
    this.child.kill(signal);
    await waitUntil('Lifeline to exit', () => this.exitCode !== null, timeoutMs);
    return this.exitCode!;
  }
}
