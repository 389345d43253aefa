// The S3 stand-in: a simulated S3 on 127.0.0.1, path-style (/bucket/key), for the real AWS SDK client. It answers the
// calls backup stores make, in S3's own wire format (XML bodies, XML errors), and checks what S3 checks: payload hashes
// and checksums, part sizes and ETags on completion, copy sources and their preconditions. Objects appear only on
// PutObject, CopyObject or CompleteMultipartUpload; parts of an upload in progress live apart from `objects`.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

export type S3StandInOp =
  | 'ListObjectsV2'
  | 'GetObject'
  | 'HeadObject'
  | 'PutObject'
  | 'CopyObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'DeleteObject'
  | 'Unsupported';

export interface S3StandInCall {
  readonly op: S3StandInOp;
  /** The object key ('' for bucket-level calls). */
  readonly key: string;
  readonly partNumber?: number;
  /** The status answered. */
  readonly status: number;
}

export interface S3StandInFailure {
  readonly op: S3StandInOp;
  readonly status: number;
  readonly code: string;
  /** How many matching requests fail (default 1). */
  times?: number;
}

interface ObjectInfo {
  /** The buffer this describes: info for a buffer a test swapped into `objects` is stale and recomputed. */
  readonly data: Buffer;
  readonly lastModified: Date;
  readonly etag: string;
  /** CRC32 as S3 keeps it: FULL_OBJECT for PutObject, COMPOSITE ("<crc of part crcs>-<parts>") for multipart. */
  readonly checksum?: { readonly crc32: string; readonly type: 'FULL_OBJECT' | 'COMPOSITE' };
}

interface Upload {
  readonly key: string;
  readonly checksumAlgorithm: string | undefined;
  readonly parts: Map<number, { data: Buffer; etag: string; checksum: string | undefined }>;
}

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's limit for one CopyObject and for one part. */
const MAX_COPY_SIZE = 5 * 1024 * 1024 * 1024;
const GET_CHUNK = 64 * 1024;

function xmlEscape(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

function crc32Base64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data) >>> 0);
  return out.toString('base64');
}

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Decodes an `aws-chunked` body: `<hex size>[;chunk-signature=...]\r\n<data>\r\n` ... `0\r\n<trailers>\r\n`. */
function decodeAwsChunked(raw: Buffer): { data: Buffer; trailers: Record<string, string> } {
  const parts: Buffer[] = [];
  const trailers: Record<string, string> = {};
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd < 0) throw new S3Error(400, 'IncompleteBody', 'aws-chunked body ended early');
    const size = parseInt(raw.subarray(at, lineEnd).toString('latin1').split(';')[0]!, 16);
    if (!Number.isFinite(size)) throw new S3Error(400, 'InvalidRequest', 'bad aws-chunked chunk header');
    at = lineEnd + 2;
    if (size === 0) break;
    parts.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  for (const line of raw.subarray(at).toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { data: Buffer.concat(parts), trailers };
}

/** One request to answer: its operation, key, query and body. */
interface S3Exchange {
  readonly op: S3StandInOp;
  readonly key: string;
  readonly q: URLSearchParams;
  readonly req: IncomingMessage;
  readonly raw: Buffer;
  readonly res: ServerResponse;
}

export class S3StandIn {
  readonly bucket: string;
  /** Complete objects: full key (no bucket) → bytes. Tests may seed it directly. */
  readonly objects = new Map<string, Buffer>();
  /** Every request, in order of answer. */
  readonly calls: S3StandInCall[] = [];
  /** Errors to answer instead of the real thing, consumed in order for the matching op. */
  readonly failures: S3StandInFailure[] = [];
  /** Called before each request is answered (after injected failures): a test changes the world mid-sequence. */
  beforeAnswer: ((op: S3StandInOp, key: string) => void) | undefined;
  /** Largest ListObjectsV2 page (S3's is 1000); small values exercise pagination. */
  maxKeys: number;
  /** Request body bytes read off the wire so far, counted as they arrive (to see how far a client reads ahead). */
  bytesReceived = 0;
  url = '';
  private readonly info = new Map<string, ObjectInfo>();
  private readonly uploads = new Map<string, Upload>();
  private readonly startedAt = new Date();
  private server: Server | undefined;

  constructor(options: { bucket?: string; maxKeys?: number } = {}) {
    this.bucket = options.bucket ?? 'lifeline-backups';
    this.maxKeys = options.maxKeys ?? 1000;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Multipart uploads started and neither completed nor aborted. */
  openUploads(): { uploadId: string; key: string; parts: number }[] {
    return [...this.uploads].map(([uploadId, u]) => ({ uploadId, key: u.key, parts: u.parts.size }));
  }

  /** Calls of one kind, for assertions. */
  callsOf(op: S3StandInOp): S3StandInCall[] {
    return this.calls.filter((c) => c.op === op);
  }

  /** Sets an object's LastModified (objects seeded straight into `objects` otherwise show the fake's start time). */
  touch(key: string, at: Date): void {
    const data = this.objects.get(key);
    if (data) this.info.set(key, { ...this.objectInfo(key, data), lastModified: at });
  }

  private objectInfo(key: string, data: Buffer): ObjectInfo {
    let info = this.info.get(key);
    if (info?.data !== data) {
      info = { data, lastModified: this.startedAt, etag: `"${md5Hex(data)}"` };
      this.info.set(key, info);
    }
    return info;
  }

  private store(key: string, data: Buffer, etag: string, checksum?: ObjectInfo['checksum']): void {
    this.objects.set(key, data);
    this.info.set(key, { data, lastModified: new Date(), etag, ...(checksum ? { checksum } : {}) });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://s3-stand-in');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const [, bucket = '', ...rest] = url.pathname.split('/');
    let key = '';
    let op: S3StandInOp = 'Unsupported';
    let partNumber: number | undefined;
    let status: number;
    try {
      key = rest.map((s) => decodeURIComponent(s)).join('/');
      op = this.operation(method, key, q, req.headers['x-amz-copy-source'] !== undefined);
      if (op === 'UploadPart' || op === 'UploadPartCopy') partNumber = Number(q.get('partNumber'));
      const body = await this.readBody(req);
      if (op === 'Unsupported')
        throw new S3Error(
          501,
          'NotImplemented',
          `${method} ${url.pathname}${url.search} is not implemented by the fake`,
        );
      if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\//.test(req.headers.authorization ?? '')) {
        throw new S3Error(403, 'AccessDenied', 'Request is not signed with SigV4');
      }
      if (decodeURIComponent(bucket) !== this.bucket) {
        throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', {
          BucketName: decodeURIComponent(bucket),
        });
      }
      const failure = this.failures.find((f) => f.op === op);
      if (failure) {
        failure.times = (failure.times ?? 1) - 1;
        if (failure.times <= 0) this.failures.splice(this.failures.indexOf(failure), 1);
        throw new S3Error(failure.status, failure.code, 'injected failure');
      }
      this.beforeAnswer?.(op, key);
      status = await this.answer({ op, key, q, req, raw: body, res });
    } catch (err) {
      const e = err instanceof S3Error ? err : new S3Error(500, 'InternalError', String(err));
      status = e.status;
      const requestId = randomBytes(8).toString('hex').toUpperCase();
      res.writeHead(e.status, { 'content-type': 'application/xml', 'x-amz-request-id': requestId });
      if (method === 'HEAD') {
        res.end();
      } else {
        const extra = Object.entries({ ...(key ? { Key: key } : {}), ...e.extra })
          .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
          .join('');
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message>` +
            `${extra}<RequestId>${requestId}</RequestId><HostId>fake</HostId></Error>`,
        );
      }
    }
    this.calls.push({ op, key, ...(partNumber !== undefined ? { partNumber } : {}), status });
  }

  private operation(method: string, key: string, q: URLSearchParams, copy: boolean): S3StandInOp {
    if (key === '') return method === 'GET' && q.get('list-type') === '2' ? 'ListObjectsV2' : 'Unsupported';
    switch (method) {
      case 'GET':
        return 'GetObject';
      case 'HEAD':
        return 'HeadObject';
      case 'PUT':
        if (q.has('uploadId')) return copy ? 'UploadPartCopy' : 'UploadPart';
        return copy ? 'CopyObject' : 'PutObject';
      case 'POST':
        return q.has('uploads')
          ? 'CreateMultipartUpload'
          : q.has('uploadId')
            ? 'CompleteMultipartUpload'
            : 'Unsupported';
      case 'DELETE':
        return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
      default:
        return 'Unsupported';
    }
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
      this.bytesReceived += (chunk as Buffer).length;
    }
    return Buffer.concat(chunks);
  }

  /** The payload as S3 checks it: aws-chunked decoded, and its SHA-256, MD5 and CRC32 verified when sent. */
  private payload(req: IncomingMessage, raw: Buffer): { data: Buffer; checksum: string | undefined } {
    const declared = String(req.headers['x-amz-content-sha256'] ?? '');
    const chunked =
      declared.startsWith('STREAMING-') || String(req.headers['content-encoding'] ?? '').includes('aws-chunked');
    const { data, trailers } = chunked ? decodeAwsChunked(raw) : { data: raw, trailers: {} as Record<string, string> };
    if (/^[0-9a-f]{64}$/.test(declared) && createHash('sha256').update(data).digest('hex') !== declared) {
      throw new S3Error(
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    const md5 = req.headers['content-md5'];
    if (typeof md5 === 'string' && createHash('md5').update(data).digest('base64') !== md5) {
      throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    const crc = (req.headers['x-amz-checksum-crc32'] as string | undefined) ?? trailers['x-amz-checksum-crc32'];
    if (crc !== undefined && crc32Base64(data) !== crc) {
      throw new S3Error(400, 'BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
    }
    for (const other of ['crc32c', 'crc64nvme', 'sha1', 'sha256']) {
      if (req.headers[`x-amz-checksum-${other}`] !== undefined || trailers[`x-amz-checksum-${other}`] !== undefined) {
        throw new S3Error(501, 'NotImplemented', `the fake checks CRC32 only, not ${other}`);
      }
    }
    return { data, checksum: crc };
  }

  /** Answers one request by its operation; returns the status sent. */
  private answer(x: S3Exchange): Promise<number> {
    const answers: Record<S3StandInOp, (x: S3Exchange) => Promise<number>> = {
      ListObjectsV2: (x) => this.answerListObjectsV2(x),
      GetObject: (x) => this.answerGetOrHead(x),
      HeadObject: (x) => this.answerGetOrHead(x),
      PutObject: (x) => this.answerPutObject(x),
      CopyObject: (x) => this.answerCopyObject(x),
      UploadPartCopy: (x) => this.answerUploadPartCopy(x),
      CreateMultipartUpload: (x) => this.answerCreateMultipartUpload(x),
      UploadPart: (x) => this.answerUploadPart(x),
      CompleteMultipartUpload: (x) => this.answerCompleteMultipartUpload(x),
      AbortMultipartUpload: (x) => this.answerAbortMultipartUpload(x),
      DeleteObject: (x) => this.answerDeleteObject(x),
      Unsupported: (x) => this.answerUnsupported(x),
    };
    return answers[x.op](x);
  }

  private async answerListObjectsV2({ q, res }: S3Exchange): Promise<number> {
    return this.list(q, res);
  }

  private async answerGetOrHead({ op, key, req, res }: S3Exchange): Promise<number> {
    const data = this.objects.get(key);
    if (!data) {
      throw op === 'HeadObject'
        ? new S3Error(404, 'NotFound', 'Not Found')
        : new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
    }
    const info = this.objectInfo(key, data);
    const checksumMode = String(req.headers['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED';
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(data.length),
      etag: info.etag,
      'last-modified': info.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
      ...(checksumMode && info.checksum
        ? { 'x-amz-checksum-crc32': info.checksum.crc32, 'x-amz-checksum-type': info.checksum.type }
        : {}),
    });
    if (op === 'HeadObject') {
      res.end();
    } else {
      // Streamed in chunks with backpressure, as a real server does.
      await new Promise<void>((resolve, reject) => {
        const chunks = (function* () {
          for (let at = 0; at < data.length; at += GET_CHUNK) yield data.subarray(at, at + GET_CHUNK);
        })();
        Readable.from(chunks).pipe(res).on('finish', resolve).on('error', reject);
        res.on('close', resolve);
      });
    }
    return 200;
  }

  private async answerPutObject({ key, req, raw, res }: S3Exchange): Promise<number> {
    const { data, checksum } = this.payload(req, raw);
    const etag = `"${md5Hex(data)}"`;
    this.store(key, data, etag, checksum ? { crc32: checksum, type: 'FULL_OBJECT' } : undefined);
    res.writeHead(200, { etag, ...(checksum ? { 'x-amz-checksum-crc32': checksum } : {}) });
    res.end();
    return 200;
  }

  private async answerCopyObject({ key, req, res }: S3Exchange): Promise<number> {
    const source = this.copySource(req);
    if (source.data.length > MAX_COPY_SIZE) {
      const limit = `the maximum allowable size for a copy source: ${MAX_COPY_SIZE}`;
      const message = `The specified copy source is larger than ${limit}`;
      throw new S3Error(400, 'InvalidRequest', message);
    }
    if (source.key === key && req.headers['x-amz-metadata-directive'] !== 'REPLACE') {
      throw new S3Error(
        400,
        'InvalidRequest',
        'This copy request is illegal because it is trying to copy an object to itself without changing the ' +
          "object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    const data = Buffer.from(source.data);
    const etag = `"${md5Hex(data)}"`;
    const checksum = source.info.checksum ? { crc32: crc32Base64(data), type: 'FULL_OBJECT' as const } : undefined;
    this.store(key, data, etag, checksum);
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult xmlns="${XMLNS}">` +
        `<LastModified>${new Date().toISOString()}</LastModified>` +
        `<ETag>${xmlEscape(etag)}</ETag></CopyObjectResult>`,
    );
    return 200;
  }

  private async answerUploadPartCopy({ key, q, req, res }: S3Exchange): Promise<number> {
    const upload = this.upload(q, key);
    const partNumber = Number(q.get('partNumber'));
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
      throw new S3Error(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
    }
    const source = this.copySource(req);
    const range = req.headers['x-amz-copy-source-range'];
    let data = source.data;
    if (typeof range === 'string') {
      const m = /^bytes=(\d+)-(\d+)$/.exec(range);
      const first = Number(m?.[1]);
      const last = Number(m?.[2]);
      if (!m || first > last || last >= source.data.length) {
        const message = `Range specified is not valid for source object of size: ${source.data.length}`;
        throw new S3Error(400, 'InvalidArgument', message);
      }
      if (source.data.length <= MIN_PART_SIZE) {
        const message = 'The specified copy range is only allowed for source objects larger than 5 MB';
        throw new S3Error(400, 'InvalidRequest', message);
      }
      data = source.data.subarray(first, last + 1);
    }
    if (data.length > MAX_COPY_SIZE) {
      const message = `The specified copy range is larger than the maximum allowable size: ${MAX_COPY_SIZE}`;
      throw new S3Error(400, 'InvalidRequest', message);
    }
    const part = Buffer.from(data);
    const etag = `"${md5Hex(part)}"`;
    const checksum = upload.checksumAlgorithm ? crc32Base64(part) : undefined;
    upload.parts.set(partNumber, { data: part, etag, checksum });
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<CopyPartResult xmlns="${XMLNS}">` +
        `<LastModified>${new Date().toISOString()}</LastModified><ETag>${xmlEscape(etag)}</ETag>` +
        `${checksum ? `<ChecksumCRC32>${checksum}</ChecksumCRC32>` : ''}</CopyPartResult>`,
    );
    return 200;
  }

  private async answerCreateMultipartUpload({ key, req, res }: S3Exchange): Promise<number> {
    const uploadId = randomBytes(16).toString('hex');
    const checksumAlgorithm = req.headers['x-amz-checksum-algorithm'] as string | undefined;
    if (checksumAlgorithm !== undefined && checksumAlgorithm.toUpperCase() !== 'CRC32') {
      throw new S3Error(501, 'NotImplemented', `the fake checks CRC32 only, not ${checksumAlgorithm}`);
    }
    this.uploads.set(uploadId, { key, checksumAlgorithm, parts: new Map() });
    res.writeHead(200, {
      'content-type': 'application/xml',
      ...(checksumAlgorithm ? { 'x-amz-checksum-algorithm': checksumAlgorithm } : {}),
    });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult xmlns="${XMLNS}"><Bucket>${xmlEscape(this.bucket)}</Bucket>` +
        `<Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
    );
    return 200;
  }

  private async answerUploadPart({ key, q, req, raw, res }: S3Exchange): Promise<number> {
    const upload = this.upload(q, key);
    const partNumber = Number(q.get('partNumber'));
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
      throw new S3Error(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
    }
    const { data, checksum } = this.payload(req, raw);
    if (upload.checksumAlgorithm && !checksum)
      throw new S3Error(400, 'InvalidRequest', 'Checksum Type mismatch occurred, expected checksum Type: crc32');
    const etag = `"${md5Hex(data)}"`;
    upload.parts.set(partNumber, { data, etag, checksum });
    res.writeHead(200, { etag, ...(checksum ? { 'x-amz-checksum-crc32': checksum } : {}) });
    res.end();
    return 200;
  }

  private async answerCompleteMultipartUpload({ key, q, raw, res }: S3Exchange): Promise<number> {
    const upload = this.upload(q, key);
    const listed = [...raw.toString('utf8').matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => {
      const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(m[1]!)?.[1];
      return {
        number: Number(field('PartNumber')),
        etag: (field('ETag') ?? '').replace(/&quot;/g, '"'),
        checksum: field('ChecksumCRC32'),
      };
    });
    if (listed.length === 0)
      throw new S3Error(
        400,
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema',
      );
    const pieces: Buffer[] = [];
    const md5s: Buffer[] = [];
    const crcs: Buffer[] = [];
    listed.forEach((p, i) => {
      if (i > 0 && p.number <= listed[i - 1]!.number)
        throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
      const part = upload.parts.get(p.number);
      if (!part || part.etag.replace(/"/g, '') !== p.etag.replace(/"/g, '')) {
        throw new S3Error(400, 'InvalidPart', 'One or more of the specified parts could not be found.');
      }
      if (upload.checksumAlgorithm && p.checksum !== part.checksum) {
        throw new S3Error(
          400,
          'InvalidPart',
          `Part ${p.number}: the ChecksumCRC32 is missing or does not match the uploaded part.`,
        );
      }
      if (i < listed.length - 1 && part.data.length < MIN_PART_SIZE) {
        throw new S3Error(
          400,
          'EntityTooSmall',
          'Your proposed upload is smaller than the minimum allowed object size.',
        );
      }
      pieces.push(part.data);
      md5s.push(Buffer.from(part.etag.replace(/"/g, ''), 'hex'));
      if (part.checksum) crcs.push(Buffer.from(part.checksum, 'base64'));
    });
    const etag = `"${md5Hex(Buffer.concat(md5s))}-${listed.length}"`;
    const checksum = upload.checksumAlgorithm
      ? { crc32: `${crc32Base64(Buffer.concat(crcs))}-${listed.length}`, type: 'COMPOSITE' as const }
      : undefined;
    this.uploads.delete(q.get('uploadId')!);
    this.store(key, Buffer.concat(pieces), etag, checksum);
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="${XMLNS}">` +
        `<Location>${xmlEscape(`${this.url}/${this.bucket}/${key}`)}</Location><Bucket>${xmlEscape(this.bucket)}</Bucket>` +
        `<Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
    return 200;
  }

  private async answerAbortMultipartUpload({ key, q, res }: S3Exchange): Promise<number> {
    this.upload(q, key);
    this.uploads.delete(q.get('uploadId')!);
    res.writeHead(204);
    res.end();
    return 204;
  }

  private async answerDeleteObject({ key, res }: S3Exchange): Promise<number> {
    this.objects.delete(key);
    this.info.delete(key);
    res.writeHead(204);
    res.end();
    return 204;
  }

  private async answerUnsupported(_: S3Exchange): Promise<number> {
    throw new S3Error(501, 'NotImplemented', 'not implemented by the stand-in');
  }

  /** The object `x-amz-copy-source` names ("<bucket>/<url-encoded key>"), after its if-match precondition. */
  private copySource(req: IncomingMessage): { key: string; data: Buffer; info: ObjectInfo } {
    const header = String(req.headers['x-amz-copy-source'] ?? '');
    const raw = header.startsWith('/') ? header.slice(1) : header;
    if (raw.includes('?')) throw new S3Error(501, 'NotImplemented', 'the fake copies the current version only');
    const slash = raw.indexOf('/');
    if (slash <= 0) {
      const message = 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey';
      throw new S3Error(400, 'InvalidArgument', message);
    }
    const bucket = decodeURIComponent(raw.slice(0, slash));
    const key = decodeURIComponent(raw.slice(slash + 1));
    if (bucket !== this.bucket) {
      throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
    }
    const data = this.objects.get(key);
    if (!data) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
    const info = this.objectInfo(key, data);
    const ifMatch = req.headers['x-amz-copy-source-if-match'];
    if (typeof ifMatch === 'string' && ifMatch.replace(/"/g, '') !== info.etag.replace(/"/g, '')) {
      throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
        Condition: 'x-amz-copy-source-If-Match',
      });
    }
    return { key, data, info };
  }

  private upload(q: URLSearchParams, key: string): Upload {
    const upload = this.uploads.get(q.get('uploadId') ?? '');
    if (!upload || upload.key !== key) {
      throw new S3Error(
        404,
        'NoSuchUpload',
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      );
    }
    return upload;
  }

  private list(q: URLSearchParams, res: ServerResponse): number {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const requested = q.has('max-keys') ? Number(q.get('max-keys')) : 1000;
    const maxKeys = Math.max(0, Math.min(requested, this.maxKeys));
    const token = q.get('continuation-token');
    let after = q.get('start-after') ?? '';
    let skipUnder = '';
    if (token) {
      try {
        const decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
          after: string;
          commonPrefix: boolean;
        };
        after = decoded.after;
        if (decoded.commonPrefix) skipUnder = decoded.after;
      } catch {
        throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect');
      }
    }
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && k > after && !(skipUnder && k.startsWith(skipUnder)))
      .sort();
    const contents: string[] = [];
    const commonPrefixes: string[] = [];
    let last: { after: string; commonPrefix: boolean } | undefined;
    let truncated = false;
    for (const key of keys) {
      const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
      const commonPrefix = cut >= 0 ? key.slice(0, cut + delimiter.length) : undefined;
      if (commonPrefix !== undefined && last?.commonPrefix && last.after === commonPrefix) continue;
      if (contents.length + commonPrefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (commonPrefix !== undefined) {
        commonPrefixes.push(commonPrefix);
        last = { after: commonPrefix, commonPrefix: true };
      } else {
        const data = this.objects.get(key)!;
        const info = this.objectInfo(key, data);
        contents.push(
          `<Contents><Key>${xmlEscape(key)}</Key><LastModified>${info.lastModified.toISOString()}</LastModified>` +
            `<ETag>${xmlEscape(info.etag)}</ETag><Size>${data.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
        );
        last = { after: key, commonPrefix: false };
      }
    }
    const next = truncated && last ? Buffer.from(JSON.stringify(last)).toString('base64url') : undefined;
    const tag = (name: string, value: string | number | boolean) => `<${name}>${xmlEscape(String(value))}</${name}>`;
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="${XMLNS}">` +
        tag('Name', this.bucket) +
        tag('Prefix', prefix) +
        (delimiter ? tag('Delimiter', delimiter) : '') +
        tag('MaxKeys', maxKeys) +
        tag('KeyCount', contents.length + commonPrefixes.length) +
        tag('IsTruncated', truncated) +
        (token ? tag('ContinuationToken', token) : '') +
        (next ? tag('NextContinuationToken', next) : '') +
        contents.join('') +
        commonPrefixes.map((p) => `<CommonPrefixes>${tag('Prefix', p)}</CommonPrefixes>`).join('') +
        '</ListBucketResult>',
    );
    return 200;
  }
}
