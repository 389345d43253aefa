// dns_switch: one Route 53 record set pointed somewhere else (the plan's "point DNS at the DR region"): an UPSERT,
// then a wait until Route 53 reports the change INSYNC on all its servers, then the record read back.
import { z } from 'zod';
import type { DnsRecord } from '../../../../adapters/aws/port.js';
import { defineStepKind, templated } from '../../step-kind.js';
import { waitOptions, type AwsStepDeps } from '../aws.js';

// Route 53 usually reports INSYNC within a minute.
const DEADLINE_MS = 30 * 60_000;
const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'TXT', 'MX', 'NS', 'SRV', 'CAA', 'PTR', 'NAPTR', 'DS', 'SPF'] as const;

const params = z.strictObject({
  zone_id: z.string().regex(/^Z[A-Z0-9]{1,32}$/, 'must be a Route 53 hosted zone id (Z…)'),
  record: z
    .string()
    .regex(/^(\*\.)?([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?\.)+[a-zA-Z]{2,63}\.?$/, 'must be a DNS name'),
  type: z.enum(RECORD_TYPES),
  value: templated(z.string().trim().min(1, 'must not be empty').max(4000, 'must be at most 4,000 characters')),
  ttl: z.number().int('must be a whole number of seconds').min(0).max(2_147_483_647),
});
type Params = z.infer<typeof params>;

/** Route 53 names: lower case, no trailing dot (as the port gives them). */
function nameOf(p: Params): string {
  return p.record.toLowerCase().replace(/\.$/, '');
}

/** The value as Route 53 holds it: a TXT value is quoted. */
function valueOf(p: Params): string {
  return p.type === 'TXT' && !p.value.startsWith('"') ? `"${p.value.replace(/(["\\])/g, '\\$1')}"` : p.value;
}

/** Names compare without case or a trailing dot; TXT values exactly. */
function sameValue(type: string, a: string, b: string): boolean {
  const norm = (v: string) => (type === 'TXT' ? v : v.toLowerCase().replace(/\.$/, ''));
  return norm(a) === norm(b);
}

function shown(record: DnsRecord): string {
  const to = record.aliasTarget ? `alias ${record.aliasTarget}` : record.values.join(', ');
  return `${to}${record.ttl !== undefined ? ` (TTL ${record.ttl})` : ''}`;
}

export const dnsSwitchKind = defineStepKind<AwsStepDeps>()({
  id: 'dns_switch',
  params,
  state: z.object({ change: z.string().optional() }),
  outputs: ['change_id'],
  deadlineMs: () => DEADLINE_MS,
  describe: (p) => `point ${p.type} ${nameOf(p)} at ${p.value} (TTL ${p.ttl}) in Route 53 zone ${p.zone_id}`,

  async plan(ctx, deps) {
    const p = ctx.params;
    const dns = deps.aws.route53();
    const zone = await dns.getHostedZone(p.zone_id);
    if (!zone)
      return { does: `would UPSERT ${p.type} ${nameOf(p)}`, missing: [`no Route 53 hosted zone ${p.zone_id}`] };
    const name = nameOf(p);
    if (name !== zone.name && !name.endsWith(`.${zone.name}`)) {
      return {
        does: `would UPSERT ${p.type} ${name}`,
        missing: [`${name} is not in zone ${zone.name} (${p.zone_id})`],
      };
    }
    const records = await dns.recordsAt(p.zone_id, name);
    const current = records.find((r) => r.type === p.type);
    const others = records.filter((r) => r.type !== p.type).map((r) => r.type);
    const missing: string[] = [];
    // A switch is of a record that exists: none there is a wrong name or zone in the runbook, not a record to create.
    if (!current) missing.push(`no ${p.type} record ${name} in zone ${zone.name} (${p.zone_id})`);
    if (others.length > 0 && (p.type === 'CNAME' || others.includes('CNAME'))) {
      missing.push(`${name} also has ${others.join(', ')} records: Route 53 allows no other record beside a CNAME`);
    }
    const from = current ? ` from ${shown(current)}` : '';
    return {
      does: `would change ${p.type} ${name} in zone ${zone.name}${from} to ${valueOf(p)} (TTL ${p.ttl}) and wait until Route 53 has it everywhere (INSYNC)`,
      missing,
    };
  },

  async run(ctx, deps) {
    const p = ctx.params;
    // A recorded change is waited on, never made again (check does the waiting).
    if (ctx.state.change) return;
    const change = await deps.aws
      .route53()
      .upsert(
        p.zone_id,
        { name: nameOf(p), type: p.type, ttl: p.ttl, values: [valueOf(p)] },
        `Lifeline runbook ${ctx.run.runbook} RUN-${ctx.run.number}`,
      );
    ctx.state.change = change.id;
    await ctx.recordChange(
      `Route 53 UPSERT ${p.type} ${nameOf(p)} -> ${valueOf(p)} (TTL ${p.ttl}) in zone ${p.zone_id}: change ${change.id}`,
    );
  },

  async check(ctx, deps) {
    const p = ctx.params;
    const change = ctx.state.change;
    if (!change) throw new Error('no Route 53 change was recorded: the step has not run');
    const dns = deps.aws.route53();
    ctx.note(`change ${change}: waiting for INSYNC`);
    await dns.waitForChange(change, waitOptions(deps, ctx, DEADLINE_MS));
    const record = (await dns.recordsAt(p.zone_id, nameOf(p))).find((r) => r.type === p.type);
    const wanted = valueOf(p);
    if (
      !record ||
      record.values.length !== 1 ||
      !sameValue(p.type, record.values[0]!, wanted) ||
      record.ttl !== p.ttl
    ) {
      const now = record ? shown(record) : 'no such record';
      throw new Error(
        `change ${change} is INSYNC but ${p.type} ${nameOf(p)} reads ${now}, not ${wanted} (TTL ${p.ttl})`,
      );
    }
    return {
      detail: `${p.type} ${nameOf(p)} -> ${wanted} (TTL ${p.ttl}); change ${change} INSYNC`,
      outputs: { change_id: change },
    };
  },
});
