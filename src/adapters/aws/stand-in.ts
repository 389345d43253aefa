// The AWS stand-in: a simulated AWS on 127.0.0.1 that the real SDK clients reach through AWS_ENDPOINT_URL_RDS / _ECS /
// _CLOUDWATCH_LOGS: the tests' AWS, and the sandbox's (npm run sandbox) too. One server speaks both wire protocols
// the adapters use:
//   RDS  — query protocol: form body `Action=...&Version=2014-10-31`, XML answers, XML <ErrorResponse> errors;
//   ECS and CloudWatch Logs — JSON 1.1 chosen by `X-Amz-Target`, errors as `{"__type", "message"}` plus
//   the `x-amzn-ErrorType` header.
// It serves exactly the calls the adapters make. The state behind it is the in-memory doubles from
// src/adapters/aws/memory.ts, so unit tests, end-to-end tests and the sandbox script AWS the same way
// (`aws.rds.setInstance`, `aws.ecs.rolloutOutcome = 'FAILED'`, `aws.logs.addEvents`...); their refusals (not found,
// already exists, wrong state) go out in each protocol's real error shape, so the SDK raises the modelled exceptions.
import { messageOf } from '../../shared/errors.js';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AwsRefusedError } from './aws.js';
import type { DbInstance, DbSnapshot, EcsService, LogEvent } from './port.js';
import { MemoryEcs, MemoryLogs, MemoryRds, type MemoryLogsQuery } from './memory.js';

export type SimulatedAwsService = 'rds' | 'ecs' | 'logs';

export interface SimulatedAwsCall {
  readonly service: SimulatedAwsService;
  readonly action: string;
  /** RDS: the decoded form fields (Action and Version included); ECS/Logs: the parsed JSON body. */
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

const MUTATING = new Set(['CreateDBSnapshot', 'DeleteDBSnapshot', 'RestoreDBInstanceFromDBSnapshot', 'UpdateService']);
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

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
  readonly rds = new MemoryRds();
  readonly ecs = new MemoryEcs();
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
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'AKIDFAKEAWS',
      AWS_SECRET_ACCESS_KEY: 'fake-aws-secret-key',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  /** Makes the next request(s) for `action` fail with an AWS error (AccessDenied unless told otherwise). */
  failNext(action: string, error: SimulatedAwsError = {}): void {
    const rds = !this.isJsonAction(action);
    const code = error.code ?? (rds ? 'AccessDenied' : 'AccessDeniedException');
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

  private isJsonAction(action: string): boolean {
    return action === 'DescribeServices' || action === 'UpdateService' || action === 'FilterLogEvents';
  }

  private handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string') {
      void this.handleJson(target, body, res);
    } else {
      void this.handleQuery(body, res);
    }
  }

  // ---- RDS: query protocol ----

  private async handleQuery(body: string, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(body);
    const params = Object.fromEntries(form.entries());
    const action = params.Action ?? '';
    const call: SimulatedAwsCall = { service: 'rds', action, params, at: Date.now() };
    this.calls.push(call);
    try {
      this.throwInjected(action);
      const result = await this.rdsAction(action, params);
      sendXml(
        res,
        200,
        `<${action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
      );
    } catch (err) {
      const e = toRefusal(err, 'rds');
      // The query protocol's error shape; the SDK maps <Code> to its modelled fault (DBInstanceNotFound →
      // DBInstanceNotFoundFault).
      sendXml(
        res,
        e.status,
        `<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${xml(e.code)}</Code><Message>${xml(e.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
    }
    this.onAnswered?.(call);
  }

  private async rdsAction(action: string, p: Record<string, string>): Promise<string> {
    switch (action) {
      case 'DescribeDBInstances': {
        const id = p.DBInstanceIdentifier;
        if (!id) throw new Refusal('InvalidParameterCombination', 400, 'the simulation needs DBInstanceIdentifier');
        const instance = await this.rds.describeInstance(id);
        if (!instance) throw new Refusal('DBInstanceNotFound', 404, `DBInstance ${id} not found.`);
        return `<DBInstances>${instanceXml(instance)}</DBInstances>`;
      }
      case 'DescribeDBSnapshots': {
        if (p.DBSnapshotIdentifier) {
          const snapshot = await this.rds.describeSnapshot(p.DBSnapshotIdentifier);
          if (!snapshot)
            throw new Refusal('DBSnapshotNotFound', 404, `DBSnapshot ${p.DBSnapshotIdentifier} not found.`);
          return `<DBSnapshots>${snapshotXml(snapshot)}</DBSnapshots>`;
        }
        if (!p.DBInstanceIdentifier)
          throw new Refusal('InvalidParameterCombination', 400, 'the simulation needs an identifier');
        const all = await this.rds.listSnapshots(p.DBInstanceIdentifier);
        const size = Math.max(1, Number(p.MaxRecords ?? 100));
        const offset = Number(p.Marker ?? 0);
        const page = all.slice(offset, offset + size);
        const marker = offset + size < all.length ? `<Marker>${offset + size}</Marker>` : '';
        return `<DBSnapshots>${page.map(snapshotXml).join('')}</DBSnapshots>${marker}`;
      }
      case 'CreateDBSnapshot': {
        const tags = indexed(p, 'Tags.Tag.').map((t) => [t.Key ?? '', t.Value ?? ''] as const);
        await this.rds.createSnapshot(
          p.DBInstanceIdentifier ?? '',
          p.DBSnapshotIdentifier ?? '',
          tags.length > 0 ? Object.fromEntries(tags) : undefined,
        );
        return snapshotXml(this.rds.peekSnapshot(p.DBSnapshotIdentifier ?? '')!);
      }
      case 'DeleteDBSnapshot': {
        const snapshot = this.rds.peekSnapshot(p.DBSnapshotIdentifier ?? '');
        if (!snapshot)
          throw new AwsRefusedError(
            'rds',
            'DBSnapshotNotFound',
            `DBSnapshot ${p.DBSnapshotIdentifier ?? ''} not found.`,
          );
        await this.rds.deleteSnapshot(snapshot.id);
        return snapshotXml({ ...snapshot, status: 'deleted' });
      }
      case 'RestoreDBInstanceFromDBSnapshot': {
        const securityGroups = indexed(p, 'VpcSecurityGroupIds.VpcSecurityGroupId.').map((v) => v[''] ?? '');
        const snapshot = this.rds.peekSnapshot(p.DBSnapshotIdentifier ?? '');
        const source = snapshot && this.rds.peekInstance(snapshot.instanceId);
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
        await this.rds.restoreFromSnapshot(p.DBSnapshotIdentifier ?? '', like.id, like);
        return instanceXml(this.rds.peekInstance(like.id)!);
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

  private async handleJson(target: string, body: string, res: ServerResponse): Promise<void> {
    const [prefix = '', action = ''] = target.split('.');
    const service: SimulatedAwsService = prefix.startsWith('Logs_') ? 'logs' : 'ecs';
    let params: Record<string, unknown>;
    try {
      params = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      params = { unparsable: body };
    }
    const call: SimulatedAwsCall = { service, action, params, at: Date.now() };
    this.calls.push(call);
    try {
      this.throwInjected(action);
      const result = service === 'logs' ? await this.logsAction(action, params) : await this.ecsAction(action, params);
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

  private async ecsAction(action: string, p: Record<string, unknown>): Promise<unknown> {
    const cluster = lastArnPart(String(p.cluster ?? 'default'));
    switch (action) {
      case 'DescribeServices': {
        const services: unknown[] = [];
        const failures: unknown[] = [];
        for (const raw of (p.services as string[] | undefined) ?? []) {
          const name = lastArnPart(raw);
          const found = await this.ecs.describeService(cluster, name);
          if (found) services.push(serviceJson(cluster, found));
          else failures.push({ arn: serviceArn(cluster, name), reason: 'MISSING' });
        }
        return { services, failures };
      }
      case 'UpdateService': {
        const name = lastArnPart(String(p.service ?? ''));
        if (typeof p.desiredCount === 'number') await this.ecs.setDesiredCount(cluster, name, p.desiredCount);
        if (p.forceNewDeployment === true) await this.ecs.forceNewDeployment(cluster, name);
        const state = this.ecs.peekService(cluster, name);
        if (!state) throw new Refusal('ServiceNotFoundException', 400, 'Service not found.');
        return { service: serviceJson(cluster, state) };
      }
      default:
        throw new Refusal('UnknownOperationException', 400, `the simulation does not serve ECS ${action}`);
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
    return new Refusal(code, /NotFound/.test(code) && service === 'rds' ? 404 : 400, message);
  }
  return new Refusal(service === 'rds' ? 'InternalFailure' : 'ServerException', 500, messageOf(err));
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

function instanceXml(i: DbInstance): string {
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
    `<DBInstanceArn>arn:aws:rds:${REGION}:${ACCOUNT}:db:${xml(i.id)}</DBInstanceArn></DBInstance>`
  );
}

function snapshotXml(s: DbSnapshot): string {
  return (
    `<DBSnapshot><DBSnapshotIdentifier>${xml(s.id)}</DBSnapshotIdentifier><DBInstanceIdentifier>${xml(s.instanceId)}</DBInstanceIdentifier>` +
    `<Status>${xml(s.status)}</Status><SnapshotType>${xml(s.type)}</SnapshotType><Engine>postgres</Engine>` +
    (s.createdAt ? `<SnapshotCreateTime>${s.createdAt.toISOString()}</SnapshotCreateTime>` : '') +
    (s.allocatedStorageGb !== undefined ? `<AllocatedStorage>${s.allocatedStorageGb}</AllocatedStorage>` : '') +
    (s.percentProgress !== undefined ? `<PercentProgress>${s.percentProgress}</PercentProgress>` : '') +
    `<DBSnapshotArn>arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${xml(s.id)}</DBSnapshotArn></DBSnapshot>`
  );
}

function serviceJson(cluster: string, s: EcsService): unknown {
  return {
    serviceArn: serviceArn(cluster, s.name),
    serviceName: s.name,
    clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${cluster}`,
    status: s.status,
    desiredCount: s.desired,
    runningCount: s.running,
    pendingCount: s.pending,
    launchType: 'FARGATE',
    deployments: s.deployments.map((d) => ({
      id: d.id,
      status: d.status,
      taskDefinition: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${s.name}:7`,
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

function serviceArn(cluster: string, name: string): string {
  return `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${cluster}/${name}`;
}

function lastArnPart(value: string): string {
  return value.includes('/') ? value.slice(value.lastIndexOf('/') + 1) : value;
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
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
