import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { assertPlainName, NotFoundError, type BackupStore, type StoredObject } from './port.js';

/** A folder of backups. Writes go to a hidden temporary name and are renamed when complete (atomic on POSIX). */
export function createFileStore(url: string): BackupStore {
  const folder = fileURLToPath(url.endsWith('/') ? url : `${url}/`);
  const existingPath = async (name: string): Promise<string> => {
    assertPlainName(name);
    const path = join(folder, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new NotFoundError(name, url);
    return path;
  };
  return {
    location: url,
    async list() {
      let names: string[];
      try {
        names = await readdir(folder);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const objects: StoredObject[] = [];
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const info = await stat(join(folder, name)).catch(() => undefined);
        if (info?.isFile()) objects.push({ name, size: info.size, modifiedAt: info.mtime });
      }
      return objects;
    },
    async read(name) {
      return createReadStream(await existingPath(name));
    },
    localPath: existingPath,
    async write(name, body: Readable) {
      assertPlainName(name);
      await mkdir(folder, { recursive: true });
      const partial = join(folder, `.${name}.partial-${randomBytes(4).toString('hex')}`);
      try {
        await pipeline(body, createWriteStream(partial, { flags: 'wx' }));
        const { size } = await stat(partial);
        await rename(partial, join(folder, name));
        return { size };
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
    },
    async remove(name) {
      assertPlainName(name);
      await rm(join(folder, name), { force: true });
    },
    async rename(from, to) {
      assertPlainName(to);
      // rename(2) within one folder is atomic: `to` is the old file or the whole new one, never a mix.
      await rename(await existingPath(from), join(folder, to));
    },
  };
}
