// An in-memory BackupStore for unit tests of the modules that use one. It behaves like the real stores: plain names
// only, NotFoundError for a missing object, and an object appears only once its whole stream has been read.
import { Readable } from 'node:stream';
import { assertPlainName, NotFoundError, type BackupStore, type StoredObject } from './port.js';

interface MemoryObject {
  readonly body: Buffer;
  readonly modifiedAt: Date;
}

export interface InjectedWriteFailure {
  /** The write fails once it has read more than this many bytes (0: on the first chunk). */
  readonly afterBytes: number;
  readonly error?: Error;
}

export class MemoryStore implements BackupStore {
  readonly objects = new Map<string, MemoryObject>();
  /** Every call, in order, for assertions. */
  readonly calls: { op: 'list' | 'read' | 'write' | 'remove' | 'rename'; name?: string; to?: string }[] = [];
  private nextFailure: InjectedWriteFailure | undefined;

  constructor(readonly location = 'memory://backups/') {}

  /** Adds an object directly (no write call recorded). */
  put(name: string, body: Buffer | string, modifiedAt = new Date()): this {
    assertPlainName(name);
    this.objects.set(name, { body: Buffer.from(body), modifiedAt });
    return this;
  }

  /** The next write fails midway: after `afterBytes` bytes it rejects and leaves nothing under the name. */
  failNextWrite(failure: InjectedWriteFailure): void {
    this.nextFailure = failure;
  }

  text(name: string): string | undefined {
    return this.objects.get(name)?.body.toString('utf8');
  }

  async list(): Promise<StoredObject[]> {
    this.calls.push({ op: 'list' });
    return [...this.objects].map(([name, o]) => ({ name, size: o.body.length, modifiedAt: o.modifiedAt }));
  }

  async read(name: string): Promise<Readable> {
    assertPlainName(name);
    this.calls.push({ op: 'read', name });
    const object = this.objects.get(name);
    if (!object) throw new NotFoundError(name, this.location);
    return Readable.from([Buffer.from(object.body)]);
  }

  async write(name: string, body: Readable): Promise<{ size: number }> {
    assertPlainName(name);
    this.calls.push({ op: 'write', name });
    const failure = this.nextFailure;
    this.nextFailure = undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        chunks.push(bytes);
        size += bytes.length;
        if (failure && size > failure.afterBytes)
          throw failure.error ?? new Error(`injected failure after ${size} bytes`);
      }
    } catch (err) {
      body.destroy();
      throw err;
    }
    this.objects.set(name, { body: Buffer.concat(chunks), modifiedAt: new Date() });
    return { size };
  }

  async remove(name: string): Promise<void> {
    assertPlainName(name);
    this.calls.push({ op: 'remove', name });
    this.objects.delete(name);
  }

  async rename(from: string, to: string): Promise<void> {
    assertPlainName(from);
    assertPlainName(to);
    this.calls.push({ op: 'rename', name: from, to });
    const object = this.objects.get(from);
    if (!object) throw new NotFoundError(from, this.location);
    this.objects.set(to, object);
    this.objects.delete(from);
  }
}
