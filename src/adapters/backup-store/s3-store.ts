import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { assertPlainName, NotFoundError, type BackupStore, type StoredObject } from './port.js';

export interface S3StoreOptions {
  /** Bytes per multipart part (S3's minimum, 5 MiB, is the default). An object may have at most 10,000 parts. */
  readonly partSizeBytes?: number;
  /**
   * Parts uploaded at once. One write holds about (queueSize + 2) × partSizeBytes: the parts in flight, the next one
   * filling, and the copy lib-storage makes of it (garbage the runtime frees lazily comes on top).
   */
  readonly queueSize?: number;
  /** Renames copy objects up to this size with one CopyObject (S3 allows 5 GiB), larger ones part by part. */
  readonly singleCopyLimitBytes?: number;
  /** Part size of a copy done part by part (UploadPartCopy); raised when the object would need over 10,000 parts. */
  readonly copyPartSizeBytes?: number;
}

const MIB = 1024 * 1024;
/** 5 MiB × 10,000 parts: objects up to about 52 GB; raise `partSizeBytes` for larger dumps. */
export const DEFAULT_PART_SIZE_BYTES = 5 * MIB;
export const DEFAULT_QUEUE_SIZE = 2;
/** The largest object one CopyObject may copy. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MIB;
const DEFAULT_COPY_PART_SIZE_BYTES = 512 * MIB;
const MAX_PARTS = 10_000;

/**
 * The S3 client backups use. Region, credentials and endpoint come from the SDK's own chain (AWS_REGION,
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, ...). Against an IP endpoint (a local fake, MinIO) the SDK goes
 * path-style by itself. Each attempt is bounded, and so is the number of attempts.
 */
export function createS3Client(): S3Client {
  return new S3Client({
    maxAttempts: 3,
    followRegionRedirects: true,
    requestHandler: {
      connectionTimeout: 5_000,
      // From sending the request (a whole part, for uploads) to the response headers.
      requestTimeout: 120_000,
      throwOnRequestTimeout: true,
      // No byte either way for this long ends the request, including a download nobody reads any more.
      socketTimeout: 300_000,
    },
  });
}

interface S3Location {
  readonly bucket: string;
  /** '' (the whole bucket) or a key prefix ending in '/'. */
  readonly prefix: string;
}

/** `s3://bucket/prefix/`: the prefix is a folder, with or without the trailing slash. */
export function parseS3Url(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`"${url.replace(/\/\/[^/]*@/, '//…@')}" is not a valid s3:// URL`);
  }
  if (parsed.protocol !== 's3:') throw new Error(`"${url}" is not an s3:// URL`);
  if (parsed.username || parsed.password) {
    // Never echo the URL: what sits before the @ may be a secret key.
    throw new Error('an s3:// backup store URL must not carry credentials: use the AWS SDK credential chain');
  }
  if (parsed.port || parsed.search || parsed.hash) {
    throw new Error(`"${url}": an s3:// URL is s3://bucket/prefix/ with nothing else (no port, query or fragment)`);
  }
  const bucket = parsed.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`"${url}": "${bucket}" is not a valid S3 bucket name`);
  }
  // The raw path, not parsed.pathname: URL parsing would quietly resolve "a/../b" to "b".
  const rawPath = /^s3:\/\/[^/?#]*\/?([^?#]*)/i.exec(url)?.[1] ?? '';
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new Error(`"${url}" has a badly encoded path`);
  }
  if (path === '') return { bucket, prefix: '' };
  const segments = path.replace(/\/$/, '').split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`"${url}": the prefix must not contain empty, "." or ".." segments`);
  }
  return { bucket, prefix: `${segments.join('/')}/` };
}

function isNoSuchKey(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  return err.name === 'NoSuchKey' || (err.$metadata.httpStatusCode === 404 && err.name === 'NotFound');
}

/** What every operation of one store works with: where it is, and the sizes its writes and copies use. */
interface S3Context {
  readonly client: S3Client;
  /** The store's URL, as errors name it. */
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly partSize: number;
  readonly queueSize: number;
  readonly singleCopyLimit: number;
  readonly copyPartSize: number;
}

function s3Context(url: string, client: S3Client, options: S3StoreOptions): S3Context {
  const { bucket, prefix } = parseS3Url(url);
  const partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
  const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
  if (!Number.isInteger(partSize) || partSize < 5 * MIB)
    throw new Error('partSizeBytes must be a whole number of at least 5 MiB');
  if (!Number.isInteger(queueSize) || queueSize < 1) throw new Error('queueSize must be a whole number of at least 1');
  const singleCopyLimit = options.singleCopyLimitBytes ?? MAX_SINGLE_COPY_BYTES;
  const copyPartSize = options.copyPartSizeBytes ?? DEFAULT_COPY_PART_SIZE_BYTES;
  if (!Number.isInteger(singleCopyLimit) || singleCopyLimit < 0 || singleCopyLimit > MAX_SINGLE_COPY_BYTES) {
    throw new Error('singleCopyLimitBytes must be a whole number of at most 5 GiB');
  }
  if (!Number.isInteger(copyPartSize) || copyPartSize < 5 * MIB || copyPartSize > MAX_SINGLE_COPY_BYTES) {
    throw new Error('copyPartSizeBytes must be a whole number from 5 MiB to 5 GiB');
  }
  return { client, url, bucket, prefix, partSize, queueSize, singleCopyLimit, copyPartSize };
}

// CopySource is "<bucket>/<key>", URL-encoded; the slashes between the key's segments stay.
function copySourceOf({ bucket }: S3Context, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

async function listObjects({ client, url, bucket, prefix }: S3Context): Promise<StoredObject[]> {
  const objects: StoredObject[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) {
      if (!item.Key?.startsWith(prefix)) continue;
      const name = item.Key.slice(prefix.length);
      // '' is a "folder" marker object; deeper keys are rolled up into CommonPrefixes by the delimiter.
      if (name === '' || name.includes('/')) continue;
      objects.push({ name, size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0) });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (page.IsTruncated && !token)
      throw new Error(`listing ${url}: S3 said there is more but gave no continuation token`);
  } while (token);
  return objects;
}

async function readObject({ client, url, bucket, prefix }: S3Context, name: string): Promise<Readable> {
  assertPlainName(name);
  try {
    const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + name }));
    if (!(Body instanceof Readable)) throw new Error(`reading ${name} from ${url}: the SDK returned no stream`);
    return Body;
  } catch (err) {
    if (isNoSuchKey(err)) throw new NotFoundError(name, url);
    throw err;
  }
}

async function writeObject(context: S3Context, name: string, body: Readable): Promise<{ size: number }> {
  const { client, bucket, prefix, partSize, queueSize } = context;
  assertPlainName(name);
  let size = 0;
  // Counts bytes on the way through. Wrapping also hides any length the SDK could guess from the body (an fs
  // stream's file size), so a file that grows or shrinks while being read cannot trip its part-count check.
  const counted = Readable.from(
    (async function* () {
      for await (const chunk of body as AsyncIterable<Buffer | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.byteLength;
        yield bytes;
      }
    })(),
    { highWaterMark: 1 },
  );
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: prefix + name, Body: counted, ContentType: 'application/octet-stream' },
    partSize,
    queueSize,
    // On any failure the SDK sends AbortMultipartUpload: the parts are dropped and no object appears.
    leavePartsOnError: false,
  });
  try {
    await upload.done();
  } catch (err) {
    // Let the producer (pg_dump's stdout, say) stop instead of blocking on a stream nobody reads.
    counted.destroy();
    body.destroy();
    throw err;
  }
  return { size };
}

async function removeObject({ client, bucket, prefix }: S3Context, name: string): Promise<void> {
  assertPlainName(name);
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: prefix + name }));
}

// S3 has no rename: a server-side copy (no byte passes through here), then the source is deleted.
async function renameObject(context: S3Context, from: string, to: string): Promise<void> {
  const { client, url, bucket, prefix } = context;
  assertPlainName(from);
  assertPlainName(to);
  const source = prefix + from;
  const target = prefix + to;
  let size: number;
  let etag: string | undefined;
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: source }));
    size = head.ContentLength ?? 0;
    etag = head.ETag;
  } catch (err) {
    if (isNoSuchKey(err)) throw new NotFoundError(from, url);
    throw err;
  }
  if (size <= context.singleCopyLimit) {
    await client.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: target,
        CopySource: copySourceOf(context, source),
        ...(etag ? { CopySourceIfMatch: etag } : {}),
      }),
    );
  } else {
    await copyInParts(context, source, target, size, etag);
  }
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: source }));
}

/**
 * A copy over 5 GiB: a multipart upload whose parts S3 copies from the source (UploadPartCopy), `queueSize` at a
 * time; any failure aborts the upload, so nothing appears under the new key. lib-storage uploads from streams
 * only, so this is written out here.
 */
async function copyInParts(
  context: S3Context,
  source: string,
  target: string,
  size: number,
  etag: string | undefined,
): Promise<void> {
  const { client, url, bucket } = context;
  const partSize = Math.max(context.copyPartSize, Math.ceil(size / MAX_PARTS));
  const created = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: target, ContentType: 'application/octet-stream' }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`copying to ${target} in ${url}: S3 started a multipart upload without an id`);
  const count = Math.ceil(size / partSize);
  const parts: CompletedPart[] = new Array<CompletedPart>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < count; index = next++) {
      const first = index * partSize;
      const last = Math.min(size, first + partSize) - 1;
      const copied = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: target,
          UploadId: uploadId,
          PartNumber: index + 1,
          CopySource: copySourceOf(context, source),
          CopySourceRange: `bytes=${first}-${last}`,
          // Every part from the very object that was checked, not one written over it meanwhile.
          ...(etag ? { CopySourceIfMatch: etag } : {}),
        }),
      );
      const result = copied.CopyPartResult;
      if (!result?.ETag) throw new Error(`copying part ${index + 1} of ${source} in ${url}: S3 returned no ETag`);
      parts[index] = {
        PartNumber: index + 1,
        ETag: result.ETag,
        ...(result.ChecksumCRC32 ? { ChecksumCRC32: result.ChecksumCRC32 } : {}),
      };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(context.queueSize, count) }, worker));
    const completed = { Bucket: bucket, Key: target, UploadId: uploadId, MultipartUpload: { Parts: parts } };
    await client.send(new CompleteMultipartUploadCommand(completed));
  } catch (err) {
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: target, UploadId: uploadId }))
      .catch(() => undefined);
    throw err;
  }
}

/**
 * Backups under an S3 prefix. Writes are multipart uploads fed from the stream a part at a time, so memory stays
 * at about (queueSize + 2) × partSizeBytes however large the dump; the object exists only once S3 completes the
 * upload, and a failed stream aborts the upload so nothing is left under the name.
 */
export function createS3Store(
  url: string,
  client: S3Client = createS3Client(),
  options: S3StoreOptions = {},
): BackupStore {
  const context = s3Context(url, client, options);
  return {
    location: url,
    list: () => listObjects(context),
    read: (name) => readObject(context, name),
    write: (name, body) => writeObject(context, name, body),
    remove: (name) => removeObject(context, name),
    rename: (from, to) => renameObject(context, from, to),
  };
}
