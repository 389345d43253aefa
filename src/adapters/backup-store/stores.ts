import { createFileStore } from './file-store.js';
import { createS3Store } from './s3-store.js';
import type { BackupStore } from './port.js';

/** For error messages: anything before an @ in the authority may be a secret. */
function shown(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1…@');
}

/** The store a config's `backups.store` names: `file:///folder` or `s3://bucket/prefix/`. */
export function createBackupStore(url: string): BackupStore {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'file':
      try {
        return createFileStore(url);
      } catch (err) {
        throw new Error(
          `backup store "${shown(url)}" is not a local folder URL (file:///absolute/path): ${(err as Error).message}`,
          { cause: err },
        );
      }
    case 's3':
      return createS3Store(url);
    default:
      throw new Error(
        `backup store "${shown(url)}" is not supported: use file:///absolute/path or s3://bucket/prefix/`,
      );
  }
}
