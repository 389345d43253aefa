// A redis-server of the test's own, on a free port, with nothing persisted: the only Redis a test may flush, kill
// and bring back empty (the shared one at 6379 is everybody's).
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './lifeline-process.js';
import { waitUntil } from './wait.js';

export class PrivateRedis {
  private child: ChildProcess | undefined;
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    process.once('exit', redis.killOnExit);
    await redis.launch();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Everything gone at once, as after a FLUSHALL by mistake or an eviction of every key. */
  async flushAll(): Promise<void> {
    await this.withClient((c) => c.flushall());
  }

  /** A failover to an empty replica, or a restart without persistence: the server dies, and comes back empty. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    process.off('exit', this.killOnExit);
  }

  async withClient<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    // One attempt, no reconnecting: a server that is not up yet is an error to retry from outside.
    const client = new Redis(this.url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await work(client);
    } finally {
      client.disconnect();
    }
  }

  private async launch(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitUntil(
      `redis-server on port ${this.port}`,
      () => this.withClient((c) => c.ping()).catch(() => undefined),
      10_000,
      50,
    );
  }
}
