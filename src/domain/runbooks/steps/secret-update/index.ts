// secret_update: one key of a JSON secret in AWS Secrets Manager set to a new value, every other key kept (the plan's
// "update DATABASE_URL in the secrets"). The old value is kept in the step's state, and only there (no message, log
// line or detail shows either value), so that Abort can put it back.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { SecretsPort } from '../../../../adapters/aws/port.js';
import { defineStepKind, templated, type StepContext } from '../../step-kind.js';
import { awsRegion, regionName, type AwsStepDeps } from '../aws.js';

const params = z.strictObject({
  region: awsRegion.optional(),
  secret_id: z.string().min(1, 'must not be empty').max(2048),
  key: z
    .string()
    .min(1, 'must not be empty')
    .refine((key) => key !== '__proto__', 'must not be __proto__'),
  value: templated(z.string()),
});
type Params = z.infer<typeof params>;

const state = z.object({
  /** PutSecretValue's ClientRequestToken, recorded before the call: a repeated call makes no second version. */
  token: z.string().optional(),
  /** Whether the key was there before, and its value then (as JSON): what undo puts back. */
  hadKey: z.boolean().optional(),
  old: z.string().optional(),
  undoToken: z.string().optional(),
});
type State = z.infer<typeof state>;

type Read = { ok: true; object: Record<string, unknown> } | { ok: false; problem: string };

/** The secret as a JSON object, or why it is not one. Never says what the secret holds. */
async function readObject(secrets: SecretsPort, p: Params): Promise<Read> {
  const secret = await secrets.getSecret(p.secret_id);
  const where = `secret ${p.secret_id} (${regionName(p.region)})`;
  if (!secret) return { ok: false, problem: `no ${where}` };
  if (secret.text === undefined) return { ok: false, problem: `${where} holds binary data, not a JSON object` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret.text);
  } catch {
    return { ok: false, problem: `${where} is not JSON` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, problem: `${where} is not a JSON object` };
  }
  return { ok: true, object: parsed as Record<string, unknown> };
}

async function objectOf(secrets: SecretsPort, p: Params): Promise<Record<string, unknown>> {
  const read = await readObject(secrets, p);
  if (!read.ok) throw new Error(read.problem);
  return read.object;
}

function where(p: Params): string {
  return `key ${p.key} of secret ${p.secret_id} (${regionName(p.region)})`;
}

export const secretUpdateKind = defineStepKind<AwsStepDeps>()({
  id: 'secret_update',
  params,
  state,
  outputs: [],
  describe: (p) => `set ${where(p)}, keeping its other keys`,

  async plan(ctx, deps) {
    const p = ctx.params;
    const read = await readObject(deps.aws.secrets(p.region), p);
    if (!read.ok) return { does: `would set ${where(p)}`, missing: [read.problem] };
    const others = Object.keys(read.object).filter((k) => k !== p.key).length;
    const what = Object.hasOwn(read.object, p.key) ? 'replacing its value' : 'a new key';
    return { does: `would set ${where(p)} (${what}), keeping its ${others} other keys`, missing: [] };
  },

  async run(ctx, deps) {
    const p = ctx.params;
    const secrets = deps.aws.secrets(p.region);
    const object = await objectOf(secrets, p);
    if (ctx.state.token === undefined) {
      ctx.state.hadKey = Object.hasOwn(object, p.key);
      if (ctx.state.hadKey) ctx.state.old = JSON.stringify(object[p.key]);
      ctx.state.token = randomUUID();
      await ctx.recordChange(`PutSecretValue: ${where(p)} (request ${ctx.state.token})`);
    }
    // On a resumed attempt the secret may already hold the new value: the same text under the same token is no new
    // version.
    await secrets.putSecret(p.secret_id, JSON.stringify({ ...object, [p.key]: p.value }), ctx.state.token);
  },

  async check(ctx, deps) {
    const p = ctx.params;
    const object = await objectOf(deps.aws.secrets(p.region), p);
    if (object[p.key] !== p.value) throw new Error(`${where(p)} does not hold the new value when read back`);
    return { detail: `${where(p)} set; read back`, outputs: {} };
  },

  undo: putBack,
});

/** Puts the key back as it was before the step (or removes it when it was new). */
async function putBack(ctx: StepContext<Params, State>, deps: AwsStepDeps): Promise<string | undefined> {
  const p = ctx.params;
  const s = ctx.state;
  if (s.token === undefined) return undefined;
  const secrets = deps.aws.secrets(p.region);
  const restored = await objectOf(secrets, p);
  if (s.hadKey && s.old !== undefined) restored[p.key] = JSON.parse(s.old);
  else delete restored[p.key];
  if (s.undoToken === undefined) {
    s.undoToken = randomUUID();
    await ctx.recordChange(`PutSecretValue: ${where(p)} put back (request ${s.undoToken})`);
  }
  await secrets.putSecret(p.secret_id, JSON.stringify(restored), s.undoToken);
  return s.hadKey ? `put back the earlier value of ${where(p)}` : `removed ${where(p)}, which the step had added`;
}
