// Lifeline itself, unmodified: `node dist/main.js` as a child process with the sandbox's settings in its
// environment, its log lines shown in the terminal.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SetupError } from './errors.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const STOP_GRACE_MS = 12_000; // Lifeline promises to exit within 10 s of SIGTERM
const KEPT_LINES = 40;

export type ChildState = 'starting' | 'running' | 'stopped';

export class LifelineChild {
  state: ChildState = 'starting';
  private child: ChildProcess | undefined;
  private readonly recent: string[] = [];
  private exited: Promise<number> | undefined;
  private stopping = false;

  constructor(
    private readonly env: Readonly<Record<string, string>>,
    private readonly print: (line: string) => void,
    /** Told when the process ends without being asked to ("exited with code 1", "was killed by SIGKILL"). */
    private readonly onUnexpectedExit: (how: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts Lifeline and resolves once it logs that it started; rejects with its last lines if it exits first. */
  async start(timeoutMs = 60_000): Promise<void> {
    const child = spawn(process.execPath, [MAIN], { env: { ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let started: () => void = () => undefined;
    const startedPromise = new Promise<void>((resolve) => (started = resolve));
    const onLine = (line: string): void => {
      this.recent.push(line);
      if (this.recent.length > KEPT_LINES) this.recent.shift();
      const shown = formatLogLine(line);
      this.print(shown);
      if (this.state === 'starting' && shown.includes('Lifeline started')) {
        this.state = 'running';
        started();
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let tail = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (tail + chunk.toString('utf8')).split('\n');
        tail = parts.pop() ?? '';
        for (const part of parts) if (part !== '') onLine(part);
      });
    }
    this.exited = new Promise<number>((resolve) =>
      child.on('exit', (code, signal) => {
        const wasRunning = this.state === 'running';
        this.state = 'stopped';
        const status = code ?? 1;
        resolve(status);
        if (wasRunning && !this.stopping)
          this.onUnexpectedExit(signal ? `was killed by ${signal}` : `exited with code ${status}`);
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      startedPromise.then(() => 'started' as const),
      this.exited.then((code) => code),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === 'started') return;
    if (outcome === 'timeout') await this.stop();
    const why = outcome === 'timeout' ? `did not start within ${timeoutMs / 1000} s` : `exited with code ${outcome}`;
    throw new SetupError(`Lifeline ${why}. Its last lines:\n${this.recent.join('\n')}`);
  }

  /** SIGTERM, then SIGKILL if it has not exited within Lifeline's own shutdown limit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.exited || this.state === 'stopped') return;
    this.stopping = true;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** Last resort when the sandbox itself dies: the child must not outlive it. */
  killNow(): void {
    if (this.state !== 'stopped') this.child?.kill('SIGKILL');
  }
}

/** pino's JSON line as `LEVEL message key=value…`; anything else as it is. */
function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(entry)
      .filter(([k]) => !['level', 'msg', 'time', 'service', 'pid', 'hostname'].includes(k))
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${levelName(entry.level)} ${String(entry.msg ?? '')}${extra ? `  ${extra}` : ''}`;
  } catch {
    return line;
  }
}

function levelName(level: unknown): string {
  const names: Record<number, string> = {
    10: 'TRACE',
    20: 'DEBUG',
    30: 'INFO ',
    40: 'WARN ',
    50: 'ERROR',
    60: 'FATAL',
  };
  return typeof level === 'number' ? (names[level] ?? String(level)) : String(level ?? '');
}
