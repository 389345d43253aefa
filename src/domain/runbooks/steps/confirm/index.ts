// confirm: a step a person does (`terraform apply`, say). The run shows the text and a Done button, and waits; the
// requester or an approver clicks Done when it is done.
import { z } from 'zod';
import { defineStepKind, templated } from '../../step-kind.js';

export const confirmKind = defineStepKind<object>()({
  id: 'confirm',
  params: templated(z.string().trim().min(1, 'must say what to do').max(2000, 'must be at most 2,000 characters')),
  state: z.object({}),
  outputs: [],
  byPerson: true,
  describe: (params) => `by hand: ${params}`,
  plan: async (ctx) => ({ does: `would wait for a person to do, then click Done: ${ctx.params}`, missing: [] }),
  // A person makes the change: the engine waits for Done instead of calling run (see byPerson).
  run: async () => undefined,
  check: async (ctx) => ({ detail: `done by hand: ${ctx.params}`, outputs: {} }),
});
