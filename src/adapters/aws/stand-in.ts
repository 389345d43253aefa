// The AWS stand-in: a simulated AWS on 127.0.0.1 that the real SDK clients reach through AWS_ENDPOINT_URL_RDS / _ECS /
// _CLOUDWATCH_LOGS / _ROUTE_53 / _SECRETS_MANAGER: the tests' AWS, and the sandbox's (npm run sandbox) too. One server
// speaks the three wire protocols the adapters use:
//   RDS  — query protocol: form body `Action=...&Version=2014-10-31`, XML answers, XML <ErrorResponse> errors;
//   ECS, CloudWatch Logs and Secrets Manager — JSON 1.1 chosen by `X-Amz-Target`, errors as `{"__type", "message"}`
//   plus the `x-amzn-ErrorType` header;
//   Route 53 — REST-XML under /2013-04-01/, XML <ErrorResponse> errors.
// RDS, ECS and Secrets Manager are per region: the region a request was signed for (its credential scope) picks the
// state, so a cross-region CopyDBSnapshot finds its source in the region its ARN names. Route 53 is global.
// It serves exactly the calls the adapters make. The state behind it is the in-memory doubles from
// src/adapters/aws/memory.ts, so unit tests, end-to-end tests and the sandbox script AWS the same way
// (`aws.rds.setInstance`, `aws.ecs.rolloutOutcome = 'FAILED'`, `aws.logs.addEvents`...); their refusals (not found,
// already exists, wrong state) go out in each protocol's real error shape, so the SDK raises the modelled exceptions.
import { messageOf } from '../../shared/errors.js';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AwsRefusedError } from './aws.js';
import type { DbInstance, DbSnapshot, DnsRecord, EcsService, LogEvent } from './port.js';
import {
  MEMORY_ACCOUNT,
  MEMORY_DEFAULT_REGION,
  MemoryAwsRegions,
  MemoryLogs,
  type MemoryEcs,
  type MemoryLogsQuery,
  type MemoryRds,
  type MemoryRoute53,
  type MemorySecrets,
} from './memory.js';

export type SimulatedAwsService = 'rds' | 'ecs' | 'logs' | 'route53' | 'secretsmanager';

export interface SimulatedAwsCall {
  readonly service: SimulatedAwsService;
  readonly action: string;
  /** The region the request was signed for. */
  readonly region: string;
  /**
   * RDS: the decoded form fields (Action and Version included); ECS/Logs/Secrets Manager: the parsed JSON body;
   * Route 53: the path's ids and query, and ChangeResourceRecordSets' change as `{action, name, type, ttl, values}`.
   */
  readonly params: Record<string, unknown>;
  readonly at: number;
}

export interface SimulatedAwsError {
  /** Error code as AWS sends it. Default: AccessDenied (RDS) / AccessDeniedException (ECS, Logs). */
  readonly code?: string;
  /** Default 403 for RDS AccessDenied, 400 otherwise (JSON services send client errors as 400). */
  readonly status?: number;
  readonly message?: string;
  /** How many of the next requests for the action fail this way (default 1). */
  readonly times?: number;
}

const MUTATING = new Set([
  'CreateDBSnapshot',
  'DeleteDBSnapshot',
  'CopyDBSnapshot',
  'RestoreDBInstanceFromDBSnapshot',
  'UpdateService',
  'ChangeResourceRecordSets',
  'PutSecretValue',
]);
const JSON_ACTIONS = new Set([
  'DescribeServices',
  'UpdateService',
  'FilterLogEvents',
  'GetSecretValue',
  'PutSecretValue',
]);
const ACCOUNT = MEMORY_ACCOUNT;
const REGION = MEMORY_DEFAULT_REGION;
const ROUTE53_XMLNS = 'https://route53.amazonaws.com/doc/2013-04-01/';

class Refusal extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * MemoryLogs plus CloudWatch's OR terms: `?ERROR ?Exception` matches a line with any of them (MemoryLogs alone reads
 * every term as required). Other patterns go to MemoryLogs unchanged; `queries` records the pattern as sent.
 */
class CloudWatchLogsDouble extends MemoryLogs {
  override async filter(logGroup: string, query: MemoryLogsQuery['query']): Promise<LogEvent[]> {
    const terms = query.pattern?.trim().split(/\s+/) ?? [];
    if (terms.length === 0 || !terms.every((t) => t.startsWith('?'))) return super.filter(logGroup, query);
    const all = await super.filter(logGroup, {
      since: query.since,
      ...(query.until ? { until: query.until } : {}),
      limit: Number.MAX_SAFE_INTEGER,
    });
    this.queries[this.queries.length - 1] = { logGroup, query };
    const words = terms.map((t) => t.slice(1).replace(/^"(.*)"$/, '$1'));
    return all.filter((e) => words.some((word) => e.message.includes(word))).slice(0, Math.max(0, query.limit));
  }
}

export class SimulatedAws {
  /** Every region's RDS, ECS and Secrets Manager, and Route 53: `aws.regions.rds('us-west-2').setSnapshot(...)`. */
  readonly regions = new MemoryAwsRegions({ region: REGION });
  /** The default region's (AWS_REGION of env()), which the /dr jobs use. */
  readonly rds: MemoryRds = this.regions.rds();
  readonly ecs: MemoryEcs = this.regions.ecs();
  readonly secrets: MemorySecrets = this.regions.secrets();
  readonly route53: MemoryRoute53 = this.regions.route53();
  readonly logs: MemoryLogs = new CloudWatchLogsDouble();
  /** Every request, answered or failed, in order. */
  readonly calls: SimulatedAwsCall[] = [];
  /** FilterLogEvents page size (the smaller of this and the request's limit), to make pagination visible. */
  logPageSize = 10_000;
  /** Delay before answering each request (to exercise client timeouts). */
  delayMs = 0;
  url = '';
  /** Told after each request is answered (the sandbox's page shows AWS as it changes). */
  onAnswered: ((call: SimulatedAwsCall) => void) | undefined;
  private readonly failures = new Map<string, Array<Required<Omit<SimulatedAwsError, 'times'>>>>();
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answer = () => this.handle(req, Buffer.concat(chunks).toString('utf8'), res);
        if (this.delayMs > 0) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections(); // SDK clients keep sockets alive; do not wait for them to idle out
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** What a process needs in its environment to talk to it (region and dummy credentials included). */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_RDS: this.url,
      AWS_ENDPOINT_URL_ECS: this.url,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: this.url,
      AWS_ENDPOINT_URL_ROUTE_53: this.url,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: this.url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'AKIDFAKEAWS',
      AWS_SECRET_ACCESS_KEY: 'fake-aws-secret-key',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  /** Makes the next request(s) for `action` fail with an AWS error (AccessDenied unless told otherwise). */
  failNext(action: string, error: SimulatedAwsError = {}): void {
    const xmlAnswer = !JSON_ACTIONS.has(action);
    const code = error.code ?? (xmlAnswer ? 'AccessDenied' : 'AccessDeniedException');
    const status = error.status ?? (code === 'AccessDenied' ? 403 : 400);
    const message =
      error.message ?? `User: arn:aws:iam::${ACCOUNT}:user/lifeline is not authorized to perform: ${action}`;
    const list = this.failures.get(action) ?? [];
    for (let i = 0; i < (error.times ?? 1); i++) list.push({ code, status, message });
    this.failures.set(action, list);
  }

  /** Calls that change something in AWS, refused or not. */
  mutatingCalls(): SimulatedAwsCall[] {
    return this.calls.filter((c) => MUTATING.has(c.action));
  }

  callsTo(action: string): SimulatedAwsCall[] {
    return this.calls.filter((c) => c.action === action);
  }

  private handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    // SigV4's credential scope: Credential=<key>/<date>/<region>/<service>/aws4_request.
    const scope = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\//.exec(String(req.headers.authorization ?? ''));
    const region = scope?.[1] ?? REGION;
    const target = req.headers['x-amz-target'];
    if ((req.url ?? '').startsWith('/2013-04-01/')) {
      void this.handleRoute53(req, body, region, res);
    } else if (typeof target === 'string') {
      void this.handleJson(target, body, region, res);
    } else {
      void this.handleQuery(body, region, res);
    }
  }

  // ---- RDS: query protocol ----

  private async handleQuery(body: string, region: string, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(body);
    const params = Object.fromEntries(form.entries());
    const action = params.Action ?? '';
    const call: SimulatedAwsCall = { service: 'rds', action, region, params, at: Date.now() };
    this.calls.push(call);
    try {
      this.throwInjected(action);
      const result = await this.rdsAction(action, params, this.regions.rds(region));
      sendXml(
        res,
        200,
        `<${action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
      );
    } catch (err) {
      const e = toRefusal(err, 'rds');
      // The query protocol's error shape; the SDK maps <Code> to its modelled fault (DBInstanceNotFound →
      // DBInstanceNotFoundFault).
      sendXmlError(res, 'http://rds.amazonaws.com/doc/2014-10-31/', e);
    }
    this.onAnswered?.(call);
  }

  private async rdsAction(action: string, p: Record<string, string>, rds: MemoryRds): Promise<string> {
    const instanceXml = (i: DbInstance) => instanceXmlIn(rds.region, i);
    const snapshotXml = (s: DbSnapshot) => snapshotXmlIn(rds.region, s);
    switch (action) {
      case 'DescribeDBInstances': {
        const id = p.DBInstanceIdentifier;
        if (!id) throw new Refusal('InvalidParameterCombination', 400, 'the simulation needs DBInstanceIdentifier');
        const instance = await rds.describeInstance(id);
        if (!instance) throw new Refusal('DBInstanceNotFound', 404, `DBInstance ${id} not found.`);
        return `<DBInstances>${instanceXml(instance)}</DBInstances>`;
      }
      case 'DescribeDBSnapshots': {
        if (p.DBSnapshotIdentifier) {
          const snapshot = await rds.describeSnapshot(p.DBSnapshotIdentifier);
          if (!snapshot)
            throw new Refusal('DBSnapshotNotFound', 404, `DBSnapshot ${p.DBSnapshotIdentifier} not found.`);
          return `<DBSnapshots>${snapshotXml(snapshot)}</DBSnapshots>`;
        }
        if (!p.DBInstanceIdentifier)
          throw new Refusal('InvalidParameterCombination', 400, 'the simulation needs an identifier');
        const all = await rds.listSnapshots(p.DBInstanceIdentifier);
        const size = Math.max(1, Number(p.MaxRecords ?? 100));
        const offset = Number(p.Marker ?? 0);
        const page = all.slice(offset, offset + size);
        const marker = offset + size < all.length ? `<Marker>${offset + size}</Marker>` : '';
        return `<DBSnapshots>${page.map(snapshotXml).join('')}</DBSnapshots>${marker}`;
      }
      case 'CreateDBSnapshot': {
        const tags = indexed(p, 'Tags.Tag.').map((t) => [t.Key ?? '', t.Value ?? ''] as const);
        await rds.createSnapshot(
          p.DBInstanceIdentifier ?? '',
          p.DBSnapshotIdentifier ?? '',
          tags.length > 0 ? Object.fromEntries(tags) : undefined,
        );
        return snapshotXml(rds.peekSnapshot(p.DBSnapshotIdentifier ?? '')!);
      }
      case 'DeleteDBSnapshot': {
        const snapshot = rds.peekSnapshot(p.DBSnapshotIdentifier ?? '');
        if (!snapshot)
          throw new AwsRefusedError(
            'rds',
            'DBSnapshotNotFound',
            `DBSnapshot ${p.DBSnapshotIdentifier ?? ''} not found.`,
          );
        await rds.deleteSnapshot(snapshot.id);
        return snapshotXml({ ...snapshot, status: 'deleted' });
      }
      case 'CopyDBSnapshot': {
        const source = p.SourceDBSnapshotIdentifier ?? '';
        const target = p.TargetDBSnapshotIdentifier ?? '';
        await rds.copySnapshot(source, target, p.KmsKeyId ? { kmsKeyId: p.KmsKeyId } : undefined);
        return snapshotXml(rds.peekSnapshot(target)!);
      }
      case 'RestoreDBInstanceFromDBSnapshot': {
        const securityGroups = indexed(p, 'VpcSecurityGroupIds.VpcSecurityGroupId.').map((v) => v[''] ?? '');
        const snapshot = rds.peekSnapshot(p.DBSnapshotIdentifier ?? '');
        const source = snapshot && rds.peekInstance(snapshot.instanceId);
        const like: DbInstance = {
          id: p.DBInstanceIdentifier ?? '',
          status: 'creating',
          endpoint: undefined,
          engine: source?.engine ?? 'postgres',
          engineVersion: source?.engineVersion ?? '16.4',
          // What RDS does with an omitted parameter: the snapshot's class; default subnet group; default SG.
          instanceClass: p.DBInstanceClass ?? source?.instanceClass ?? 'db.t3.micro',
          subnetGroupName: p.DBSubnetGroupName ?? 'default',
          vpcSecurityGroupIds: securityGroups.length > 0 ? securityGroups : ['sg-default'],
          multiAz: p.MultiAZ === 'true',
          publiclyAccessible: p.PubliclyAccessible === 'true',
        };
        await rds.restoreFromSnapshot(p.DBSnapshotIdentifier ?? '', like.id, like);
        return instanceXml(rds.peekInstance(like.id)!);
      }
      default:
        throw new Refusal(
          'InvalidAction',
          400,
          `The action ${action} is not valid for this web service (the simulation serves only what the adapters call).`,
        );
    }
  }

  // ---- ECS and CloudWatch Logs: JSON 1.1 ----

  private async handleJson(target: string, body: string, region: string, res: ServerResponse): Promise<void> {
    const [prefix = '', action = ''] = target.split('.');
    const service: SimulatedAwsService = prefix.startsWith('Logs_')
      ? 'logs'
      : prefix === 'secretsmanager'
        ? 'secretsmanager'
        : 'ecs';
    let params: Record<string, unknown>;
    try {
      params = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      params = { unparsable: body };
    }
    const call: SimulatedAwsCall = { service, action, region, params, at: Date.now() };
    this.calls.push(call);
    try {
      this.throwInjected(action);
      const result =
        service === 'logs'
          ? await this.logsAction(action, params)
          : service === 'secretsmanager'
            ? await this.secretsAction(action, params, this.regions.secrets(region))
            : await this.ecsAction(action, params, this.regions.ecs(region), region);
      sendJson(res, 200, result);
    } catch (err) {
      const e = toRefusal(err, service);
      res.writeHead(e.status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': randomUUID(),
        'x-amzn-errortype': `${e.code}:`,
      });
      res.end(JSON.stringify({ __type: e.code, message: e.message }));
    }
    this.onAnswered?.(call);
  }

  private async ecsAction(
    action: string,
    p: Record<string, unknown>,
    ecs: MemoryEcs,
    region: string,
  ): Promise<unknown> {
    const cluster = lastArnPart(String(p.cluster ?? 'default'));
    const serviceJson = (c: string, found: EcsService) => serviceJsonIn(region, c, found);
    switch (action) {
      case 'DescribeServices': {
        const services: unknown[] = [];
        const failures: unknown[] = [];
        for (const raw of (p.services as string[] | undefined) ?? []) {
          const name = lastArnPart(raw);
          const found = await ecs.describeService(cluster, name);
          if (found) services.push(serviceJson(cluster, found));
          else failures.push({ arn: serviceArn(region, cluster, name), reason: 'MISSING' });
        }
        return { services, failures };
      }
      case 'UpdateService': {
        const name = lastArnPart(String(p.service ?? ''));
        if (typeof p.desiredCount === 'number') await ecs.setDesiredCount(cluster, name, p.desiredCount);
        if (p.forceNewDeployment === true) await ecs.forceNewDeployment(cluster, name);
        const state = ecs.peekService(cluster, name);
        if (!state) throw new Refusal('ServiceNotFoundException', 400, 'Service not found.');
        return { service: serviceJson(cluster, state) };
      }
      default:
        throw new Refusal('UnknownOperationException', 400, `the simulation does not serve ECS ${action}`);
    }
  }

  private async secretsAction(action: string, p: Record<string, unknown>, secrets: MemorySecrets): Promise<unknown> {
    const secretId = String(p.SecretId ?? '');
    switch (action) {
      case 'GetSecretValue': {
        const found = await secrets.getSecret(secretId);
        if (!found)
          throw new Refusal('ResourceNotFoundException', 400, "Secrets Manager can't find the specified secret.");
        return {
          ARN: found.arn,
          Name: found.name,
          VersionId: found.versionId,
          ...(found.text !== undefined ? { SecretString: found.text } : {}),
          VersionStages: ['AWSCURRENT'],
          CreatedDate: Date.now() / 1000,
        };
      }
      case 'PutSecretValue': {
        if (typeof p.ClientRequestToken !== 'string' || typeof p.SecretString !== 'string') {
          throw new Refusal(
            'InvalidParameterException',
            400,
            'the simulation needs ClientRequestToken and SecretString',
          );
        }
        const { versionId } = await secrets.putSecret(secretId, p.SecretString, p.ClientRequestToken);
        const found = (await secrets.getSecret(secretId))!;
        return { ARN: found.arn, Name: found.name, VersionId: versionId, VersionStages: ['AWSCURRENT'] };
      }
      default:
        throw new Refusal('UnknownOperationException', 400, `the simulation does not serve Secrets Manager ${action}`);
    }
  }

  // ---- Route 53: REST-XML ----

  private async handleRoute53(req: IncomingMessage, body: string, region: string, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://route53');
    const path = url.pathname.replace(/^\/2013-04-01/, '').replace(/\/$/, '');
    const zone = /^\/hostedzone\/([^/]+)(\/rrset)?$/.exec(path);
    const change = /^\/change\/([^/]+)$/.exec(path);
    const action = zone
      ? zone[2]
        ? req.method === 'POST'
          ? 'ChangeResourceRecordSets'
          : 'ListResourceRecordSets'
        : 'GetHostedZone'
      : change
        ? 'GetChange'
        : `${req.method ?? 'GET'} ${url.pathname}`;
    const params: Record<string, unknown> = {
      ...(zone ? { HostedZoneId: decodeURIComponent(zone[1]!) } : {}),
      ...(change ? { Id: decodeURIComponent(change[1]!) } : {}),
      ...Object.fromEntries(url.searchParams.entries()),
      ...(action === 'ChangeResourceRecordSets' ? parseChangeBatch(body) : {}),
    };
    const call: SimulatedAwsCall = { service: 'route53', action, region, params, at: Date.now() };
    this.calls.push(call);
    try {
      this.throwInjected(action);
      sendXml(res, 200, await this.route53Action(action, params));
    } catch (err) {
      const e = toRefusal(err, 'route53');
      sendXmlError(res, ROUTE53_XMLNS, e);
    }
    this.onAnswered?.(call);
  }

  private async route53Action(action: string, p: Record<string, unknown>): Promise<string> {
    const dns = this.route53;
    const zoneId = String(p.HostedZoneId ?? '');
    switch (action) {
      case 'GetHostedZone': {
        const zone = await dns.getHostedZone(zoneId);
        if (!zone) throw new Refusal('NoSuchHostedZone', 404, `No hosted zone found with ID: ${zoneId}`);
        return `<GetHostedZoneResponse xmlns="${ROUTE53_XMLNS}"><HostedZone><Id>/hostedzone/${xml(zone.id)}</Id><Name>${xml(zone.name)}.</Name><CallerReference>simulated</CallerReference><Config><PrivateZone>${zone.privateZone}</PrivateZone></Config><ResourceRecordSetCount>${dns.peekRecords(zone.id).length}</ResourceRecordSetCount></HostedZone><DelegationSet><NameServers><NameServer>ns-1.awsdns-01.org</NameServer></NameServers></DelegationSet></GetHostedZoneResponse>`;
      }
      case 'ListResourceRecordSets': {
        if (!(await dns.getHostedZone(zoneId))) {
          throw new Refusal('NoSuchHostedZone', 404, `No hosted zone found with ID: ${zoneId}`);
        }
        // Route 53's order: by name with its labels reversed (com.example.api), then by type.
        const order = (r: { name: string; type: string }) => `${r.name.split('.').reverse().join('.')} ${r.type}`;
        const start = order({
          name: String(p.name ?? '')
            .toLowerCase()
            .replace(/\.$/, ''),
          type: String(p.type ?? ''),
        });
        const all = [...dns.peekRecords(zoneId)].sort((a, b) => order(a).localeCompare(order(b)));
        const from = p.name === undefined ? all : all.filter((r) => order(r) >= start);
        const max = Math.max(1, Number(p.maxitems ?? 100));
        const page = from.slice(0, max);
        const next = from[max];
        return (
          `<ListResourceRecordSetsResponse xmlns="${ROUTE53_XMLNS}"><ResourceRecordSets>${page.map(recordXml).join('')}</ResourceRecordSets>` +
          `<IsTruncated>${next !== undefined}</IsTruncated>` +
          (next
            ? `<NextRecordName>${xml(next.name)}.</NextRecordName><NextRecordType>${next.type}</NextRecordType>`
            : '') +
          `<MaxItems>${max}</MaxItems></ListResourceRecordSetsResponse>`
        );
      }
      case 'ChangeResourceRecordSets': {
        if (p.action !== 'UPSERT') throw new Refusal('InvalidInput', 400, 'the simulation serves one UPSERT per batch');
        const record: DnsRecord = {
          name: String(p.name ?? ''),
          type: String(p.type ?? ''),
          ttl: p.ttl === undefined ? undefined : Number(p.ttl),
          values: (p.values as string[] | undefined) ?? [],
        };
        const changed = await dns.upsert(zoneId, record, String(p.comment ?? ''));
        return `<ChangeResourceRecordSetsResponse xmlns="${ROUTE53_XMLNS}">${changeInfoXml(changed.id, changed.status, dns.submittedAt(changed.id))}</ChangeResourceRecordSetsResponse>`;
      }
      case 'GetChange': {
        const changed = await dns.getChange(String(p.Id ?? ''));
        return `<GetChangeResponse xmlns="${ROUTE53_XMLNS}">${changeInfoXml(changed.id, changed.status, dns.submittedAt(changed.id))}</GetChangeResponse>`;
      }
      default:
        throw new Refusal('InvalidAction', 400, `the simulation does not serve Route 53 ${action}`);
    }
  }

  private async logsAction(action: string, p: Record<string, unknown>): Promise<unknown> {
    if (action !== 'FilterLogEvents')
      throw new Refusal('UnknownOperationException', 400, `the simulation does not serve Logs ${action}`);
    const limit = Math.min(10_000, Number(p.limit ?? 10_000));
    if (!(limit >= 1))
      throw new Refusal('InvalidParameterException', 400, '1 validation error detected: limit must be >= 1');
    const all = await this.logs.filter(String(p.logGroupName ?? ''), {
      since: new Date(Number(p.startTime ?? 0)),
      ...(p.endTime !== undefined ? { until: new Date(Number(p.endTime)) } : {}),
      ...(typeof p.filterPattern === 'string' ? { pattern: p.filterPattern } : {}),
      limit: Number.MAX_SAFE_INTEGER,
    });
    const offset = typeof p.nextToken === 'string' ? Number(p.nextToken.replace(/^page-/, '')) : 0;
    const size = Math.min(limit, this.logPageSize);
    const page = all.slice(offset, offset + size);
    return {
      events: page.map((e, i) => ({
        logStreamName: e.stream,
        timestamp: e.at.getTime(),
        message: e.message,
        ingestionTime: e.at.getTime() + 50,
        eventId: `${e.at.getTime()}-${offset + i}`,
      })),
      searchedLogStreams: [],
      ...(offset + size < all.length ? { nextToken: `page-${offset + size}` } : {}),
    };
  }

  private throwInjected(action: string): void {
    const failure = this.failures.get(action)?.shift();
    if (failure) throw new Refusal(failure.code, failure.status, failure.message);
  }
}

function toRefusal(err: unknown, service: SimulatedAwsService): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof AwsRefusedError) {
    // The doubles use the SDK's exception names; on the query wire RDS sends the code without "Fault".
    const code = service === 'rds' ? err.code.replace(/Fault$/, '') : err.code;
    const message = err.message.replace(/^[^:]+: [^:]+: (?:[A-Za-z]+: )?/, '');
    const notFound = (service === 'rds' && /NotFound/.test(code)) || (service === 'route53' && /^NoSuch/.test(code));
    return new Refusal(code, notFound ? 404 : 400, message);
  }
  const xmlAnswer = service === 'rds' || service === 'route53';
  return new Refusal(xmlAnswer ? 'InternalFailure' : 'ServerException', 500, messageOf(err));
}

/** `Tags.Tag.1.Key=a&Tags.Tag.1.Value=b` → [{ Key: 'a', Value: 'b' }]; `X.Y.1=v` → [{ '': 'v' }]. */
function indexed(params: Record<string, string>, prefix: string): Array<Record<string, string>> {
  const items = new Map<number, Record<string, string>>();
  for (const [k, v] of Object.entries(params)) {
    if (!k.startsWith(prefix)) continue;
    const [index = '', ...rest] = k.slice(prefix.length).split('.');
    const item = items.get(Number(index)) ?? {};
    item[rest.join('.')] = v;
    items.set(Number(index), item);
  }
  return [...items.entries()].sort((a, b) => a[0] - b[0]).map(([, item]) => item);
}

function instanceXmlIn(region: string, i: DbInstance): string {
  return (
    `<DBInstance><DBInstanceIdentifier>${xml(i.id)}</DBInstanceIdentifier><DBInstanceStatus>${xml(i.status)}</DBInstanceStatus>` +
    `<Engine>${xml(i.engine)}</Engine><EngineVersion>${xml(i.engineVersion)}</EngineVersion><DBInstanceClass>${xml(i.instanceClass)}</DBInstanceClass>` +
    (i.endpoint
      ? `<Endpoint><Address>${xml(i.endpoint.address)}</Address><Port>${i.endpoint.port}</Port><HostedZoneId>Z2R2ITUGPM61AM</HostedZoneId></Endpoint>`
      : '') +
    (i.subnetGroupName
      ? `<DBSubnetGroup><DBSubnetGroupName>${xml(i.subnetGroupName)}</DBSubnetGroupName><SubnetGroupStatus>Complete</SubnetGroupStatus></DBSubnetGroup>`
      : '') +
    (i.vpcSecurityGroupIds
      ? `<VpcSecurityGroups>${i.vpcSecurityGroupIds.map((g) => `<VpcSecurityGroupMembership><VpcSecurityGroupId>${xml(g)}</VpcSecurityGroupId><Status>active</Status></VpcSecurityGroupMembership>`).join('')}</VpcSecurityGroups>`
      : '') +
    (i.multiAz !== undefined ? `<MultiAZ>${i.multiAz}</MultiAZ>` : '') +
    (i.publiclyAccessible !== undefined ? `<PubliclyAccessible>${i.publiclyAccessible}</PubliclyAccessible>` : '') +
    `<DBInstanceArn>arn:aws:rds:${region}:${ACCOUNT}:db:${xml(i.id)}</DBInstanceArn></DBInstance>`
  );
}

function snapshotXmlIn(region: string, s: DbSnapshot): string {
  return (
    `<DBSnapshot><DBSnapshotIdentifier>${xml(s.id)}</DBSnapshotIdentifier><DBInstanceIdentifier>${xml(s.instanceId)}</DBInstanceIdentifier>` +
    `<Status>${xml(s.status)}</Status><SnapshotType>${xml(s.type)}</SnapshotType><Engine>postgres</Engine>` +
    (s.createdAt ? `<SnapshotCreateTime>${s.createdAt.toISOString()}</SnapshotCreateTime>` : '') +
    (s.allocatedStorageGb !== undefined ? `<AllocatedStorage>${s.allocatedStorageGb}</AllocatedStorage>` : '') +
    (s.percentProgress !== undefined ? `<PercentProgress>${s.percentProgress}</PercentProgress>` : '') +
    (s.originalCreatedAt
      ? `<OriginalSnapshotCreateTime>${s.originalCreatedAt.toISOString()}</OriginalSnapshotCreateTime>`
      : '') +
    (s.encrypted !== undefined ? `<Encrypted>${s.encrypted}</Encrypted>` : '') +
    `<DBSnapshotArn>${xml(s.arn ?? `arn:aws:rds:${region}:${ACCOUNT}:snapshot:${s.id}`)}</DBSnapshotArn></DBSnapshot>`
  );
}

function serviceJsonIn(region: string, cluster: string, s: EcsService): unknown {
  return {
    serviceArn: serviceArn(region, cluster, s.name),
    serviceName: s.name,
    clusterArn: `arn:aws:ecs:${region}:${ACCOUNT}:cluster/${cluster}`,
    status: s.status,
    desiredCount: s.desired,
    runningCount: s.running,
    pendingCount: s.pending,
    launchType: 'FARGATE',
    deployments: s.deployments.map((d) => ({
      id: d.id,
      status: d.status,
      taskDefinition: `arn:aws:ecs:${region}:${ACCOUNT}:task-definition/${s.name}:7`,
      desiredCount: d.desired,
      pendingCount: d.pending,
      runningCount: d.running,
      failedTasks: d.rolloutState === 'FAILED' ? 3 : 0,
      // JSON 1.1 timestamps are epoch seconds.
      ...(d.createdAt ? { createdAt: d.createdAt.getTime() / 1000, updatedAt: d.createdAt.getTime() / 1000 } : {}),
      launchType: 'FARGATE',
      ...(d.rolloutState ? { rolloutState: d.rolloutState } : {}),
      ...(d.rolloutStateReason ? { rolloutStateReason: d.rolloutStateReason } : {}),
    })),
  };
}

function serviceArn(region: string, cluster: string, name: string): string {
  return `arn:aws:ecs:${region}:${ACCOUNT}:service/${cluster}/${name}`;
}

function recordXml(r: DnsRecord): string {
  return (
    `<ResourceRecordSet><Name>${xml(r.name.replace(/^\*/, '\\052'))}.</Name><Type>${xml(r.type)}</Type>` +
    (r.aliasTarget
      ? `<AliasTarget><HostedZoneId>Z2FDTNDATAQYW2</HostedZoneId><DNSName>${xml(r.aliasTarget)}.</DNSName><EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget>`
      : `<TTL>${r.ttl ?? 300}</TTL><ResourceRecords>${r.values.map((v) => `<ResourceRecord><Value>${xml(v)}</Value></ResourceRecord>`).join('')}</ResourceRecords>`) +
    `</ResourceRecordSet>`
  );
}

function changeInfoXml(id: string, status: string, submittedAt: Date): string {
  return `<ChangeInfo><Id>/change/${xml(id)}</Id><Status>${xml(status)}</Status><SubmittedAt>${submittedAt.toISOString()}</SubmittedAt></ChangeInfo>`;
}

/**
 * The one change of a ChangeResourceRecordSets body, as the SDK writes it (element per field, no attributes): enough
 * XML reading for our own client's requests; a batch of several changes is refused by the caller's action check.
 */
function parseChangeBatch(body: string): Record<string, unknown> {
  const text = (tag: string, within = body) => {
    const found = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(within)?.[1];
    return found === undefined ? undefined : unxml(found);
  };
  const changes = body.match(/<Change>/g)?.length ?? 0;
  const values = [...body.matchAll(/<ResourceRecord><Value>([^<]*)<\/Value><\/ResourceRecord>/g)].map((m) =>
    unxml(m[1]!),
  );
  return {
    action: changes === 1 ? text('Action') : `${changes} changes`,
    name: text('Name'),
    type: text('Type'),
    ttl: text('TTL'),
    values,
    comment: text('Comment'),
  };
}

function unxml(value: string): string {
  return value.replace(/&(lt|gt|amp|apos|quot|#x[0-9a-fA-F]+|#\d+);/g, (_all, entity: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
    if (named[entity]) return named[entity];
    return String.fromCodePoint(entity.startsWith('#x') ? parseInt(entity.slice(2), 16) : Number(entity.slice(1)));
  });
}

function lastArnPart(value: string): string {
  return value.includes('/') ? value.slice(value.lastIndexOf('/') + 1) : value;
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

/** The XML error shape RDS (query) and Route 53 (REST-XML) share; the SDK reads <Code> as the error's name. */
function sendXmlError(res: ServerResponse, xmlns: string, e: Refusal): void {
  sendXml(
    res,
    e.status,
    `<ErrorResponse xmlns="${xmlns}"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${xml(e.code)}</Code><Message>${xml(e.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
  res.end(JSON.stringify(body));
}

function xml(value: string): string {
  return value.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}
