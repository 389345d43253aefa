// Where backups live: a local folder (file:///...) or an S3 prefix (s3://bucket/prefix/). Only the calls we use.
import type { Readable } from 'node:stream';

export interface StoredObject {
  readonly name: string;
  readonly size: number;
  readonly modifiedAt: Date;
}

export interface BackupStore {
  /** For messages: the store's URL (it never holds a secret). */
  readonly location: string;
  list(): Promise<StoredObject[]>;
  /** Streams the object; throws NotFoundError when it does not exist. */
  read(name: string): Promise<Readable>;
  /** Writes the whole stream; the object appears under `name` only once it is complete. */
  write(name: string, body: Readable): Promise<{ size: number }>;
  remove(name: string): Promise<void>;
  /**
   * Gives an object a new name: `to` appears with all of `from`'s bytes or not at all (replacing what was there),
   * then `from` is gone. Throws NotFoundError when `from` does not exist. How a backup goes from its pending name to
   * its backup name once it passed its check.
   */
  rename(from: string, to: string): Promise<void>;
  /**
   * Only for stores on this machine: the object's own path, so a program that needs a seekable file
   * (pg_restore -j) reads it in place instead of from a copy. Throws NotFoundError when it does not exist.
   */
  localPath?(name: string): Promise<string>;
}

export class NotFoundError extends Error {
  constructor(
    readonly objectName: string,
    location: string,
  ) {
    super(`${objectName} is not in ${location}`);
    this.name = 'NotFoundError';
  }
}

/** Object names are plain file names: no folders, no `..`, nothing a shell or a path join could misread. */
export function assertPlainName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes('..')) {
    throw new Error(`"${name}" is not a plain file name`);
  }
}
