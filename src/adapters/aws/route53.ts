import {
  Route53Client,
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListResourceRecordSetsCommand,
  waitUntilResourceRecordSetsChanged,
  type RRType,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { boundedClientOptions, callerFor } from './client.js';
import { AwsRefusedError, AwsWaitTimeoutError, type AwsClientLimits } from './aws.js';
import type { DnsChange, DnsRecord, Route53Port } from './port.js';

/**
 * No explicit endpoint or region: the SDK's chain applies (AWS_REGION, credentials, AWS_ENDPOINT_URL_ROUTE_53);
 * Route 53 is global, whatever the region. Bounded like every client of ours.
 */
export function createRoute53Client(limits: AwsClientLimits = {}): Route53Client {
  return new Route53Client(boundedClientOptions(limits));
}

export function createRoute53Port(client: Route53Client = createRoute53Client()): Route53Port {
  const call = callerFor('route53');
  return {
    async getHostedZone(zoneId) {
      try {
        const out = await call('GetHostedZone', () => client.send(new GetHostedZoneCommand({ Id: zoneId })));
        const zone = out.HostedZone;
        if (!zone) return undefined;
        return {
          id: bareId(zone.Id ?? zoneId),
          name: recordName(zone.Name ?? ''),
          privateZone: zone.Config?.PrivateZone ?? false,
        };
      } catch (err) {
        if (err instanceof AwsRefusedError && err.code === 'NoSuchHostedZone') return undefined;
        throw err;
      }
    },

    async recordsAt(zoneId, name) {
      const wanted = recordName(name);
      const found: DnsRecord[] = [];
      let start: { name: string; type?: RRType; identifier?: string } | undefined = { name: wanted };
      // Record sets come sorted by name, so the ones at `name` are at the start of the list from there; several
      // pages only with many routing-policy sets at one name (the cap guards against a misbehaving endpoint).
      for (let page = 0; start && page < 20; page++) {
        const from: { name: string; type?: RRType; identifier?: string } = start;
        const out = await call('ListResourceRecordSets', () =>
          client.send(
            new ListResourceRecordSetsCommand({
              HostedZoneId: zoneId,
              StartRecordName: from.name,
              ...(from.type ? { StartRecordType: from.type } : {}),
              ...(from.identifier ? { StartRecordIdentifier: from.identifier } : {}),
              MaxItems: 100,
            }),
          ),
        );
        const sets = (out.ResourceRecordSets ?? []).map(toRecord);
        found.push(...sets.filter((r) => r.name === wanted));
        start =
          out.IsTruncated && out.NextRecordName && recordName(out.NextRecordName) === wanted
            ? {
                name: out.NextRecordName,
                ...(out.NextRecordType ? { type: out.NextRecordType } : {}),
                ...(out.NextRecordIdentifier ? { identifier: out.NextRecordIdentifier } : {}),
              }
            : undefined;
      }
      return found;
    },

    async upsert(zoneId, record, comment) {
      const out = await call('ChangeResourceRecordSets', () =>
        client.send(
          new ChangeResourceRecordSetsCommand({
            HostedZoneId: zoneId,
            ChangeBatch: {
              Comment: comment,
              Changes: [
                {
                  Action: 'UPSERT',
                  ResourceRecordSet: {
                    Name: record.name,
                    Type: record.type as RRType,
                    TTL: record.ttl,
                    ResourceRecords: record.values.map((Value) => ({ Value })),
                  },
                },
              ],
            },
          }),
        ),
      );
      return toChange(out.ChangeInfo);
    },

    async getChange(changeId) {
      const out = await call('GetChange', () => client.send(new GetChangeCommand({ Id: changeId })));
      return toChange(out.ChangeInfo);
    },

    async waitForChange(changeId, options) {
      // The SDK's waiter (GetChange until INSYNC): its delays are in seconds and must be above 0, its wait longer than
      // one delay. A constant delay, like every other wait of ours, instead of AWS's 30 s growing to 120 s.
      const delay = Math.max(0.001, options.pollSeconds);
      const maxWaitTime = Math.max(options.maxWaitSeconds, delay * 2);
      try {
        await waitUntilResourceRecordSetsChanged(
          {
            client,
            minDelay: delay,
            maxDelay: delay,
            maxWaitTime,
            ...(options.signal ? { abortSignal: options.signal } : {}),
          },
          { Id: changeId },
        );
      } catch (err) {
        options.signal?.throwIfAborted();
        const name = (err as { name?: string }).name;
        if (name === 'TimeoutError')
          throw new AwsWaitTimeoutError(`Route 53 change ${changeId}`, maxWaitTime, 'PENDING');
        throw err;
      }
    },
  };
}

/** Route 53 ids come back as /hostedzone/Z… and /change/C…; callers pass and keep the bare id. */
function bareId(id: string): string {
  return id.replace(/^\/(hostedzone|change)\//, '');
}

/** A name as Route 53 lists it (`api.example.com.`, `\052.example.com.`) → `api.example.com`, `*.example.com`. */
export function recordName(name: string): string {
  return name
    .replace(/\\(\d{3})/g, (_all, octal: string) => String.fromCharCode(parseInt(octal, 8)))
    .replace(/\.$/, '')
    .toLowerCase();
}

function toRecord(r: ResourceRecordSet): DnsRecord {
  return {
    name: recordName(r.Name ?? ''),
    type: r.Type ?? '',
    ttl: r.TTL,
    values: (r.ResourceRecords ?? []).flatMap((v) => (v.Value !== undefined ? [v.Value] : [])),
    ...(r.AliasTarget?.DNSName ? { aliasTarget: recordName(r.AliasTarget.DNSName) } : {}),
  };
}

function toChange(info: { Id?: string | undefined; Status?: string | undefined } | undefined): DnsChange {
  if (!info?.Id) throw new Error('Route 53 answered without a ChangeInfo');
  return { id: bareId(info.Id), status: info.Status ?? 'PENDING' };
}
