// notify: a message to a channel, e.g. "failover started" to the stakeholders.
import { z } from 'zod';
import { defineStepKind, templated } from '../../step-kind.js';

export interface NotifyDeps {
  /** Posts `text` to `channel` (escaped: a runbook's text and the outputs in it are shown as written); returns the
   * message's timestamp. */
  readonly postNotice: (channel: string, text: string) => Promise<string>;
}

export const notifyKind = defineStepKind<NotifyDeps>()({
  id: 'notify',
  params: z.strictObject({
    channel: z.string().regex(/^[CG][A-Z0-9]{2,}$/, 'must be a Slack channel id (C…)'),
    text: templated(z.string().trim().min(1, 'must not be empty').max(3000, 'must be at most 3,000 characters')),
  }),
  state: z.object({ ts: z.string().optional() }),
  outputs: [],
  describe: (params) => `post to ${params.channel}: ${params.text}`,
  plan: async (ctx) => ({ does: `would post to ${ctx.params.channel}: ${ctx.params.text}`, missing: [] }),
  async run(ctx, deps) {
    // A message that went out is not posted again by a resumed run.
    if (ctx.state.ts !== undefined) return;
    ctx.state.ts = await deps.postNotice(ctx.params.channel, ctx.params.text);
    await ctx.recordChange(`posted to ${ctx.params.channel}`);
  },
  check: async (ctx) => ({ detail: `posted to ${ctx.params.channel}`, outputs: {} }),
});
