// statuspage: the plan's "update the status page": creates a status page incident, or updates the one an earlier
// statuspage step of the run created (`incident: "{{steps.<id>.incident}}"`), with the message as its update.
import { z } from 'zod';
import {
  COMPONENT_STATUSES,
  STATUSPAGE_STATUSES,
  type ComponentStatus,
  type StatuspagePort,
} from '../../../../adapters/statuspage/port.js';
import { defineStepKind, templated } from '../../step-kind.js';

export interface StatuspageStepDeps {
  /** The page of the config's `statuspage:` and the components it lists; undefined when it has none. */
  readonly statuspage: { readonly port: StatuspagePort; readonly components: readonly string[] } | undefined;
}

export const statuspageKind = defineStepKind<StatuspageStepDeps>()({
  id: 'statuspage',
  params: z.strictObject({
    status: z.enum(STATUSPAGE_STATUSES, { error: 'must be investigating, identified, monitoring or resolved' }),
    message: templated(z.string().trim().min(1, 'must not be empty')),
    /** The incident's public title when the step creates one; the message by default. */
    name: z.string().trim().min(1, 'must not be empty').max(200).optional(),
    /** What every component under `statuspage.components` shows; left as they are when absent (but resolved). */
    components: z.enum(COMPONENT_STATUSES, { error: `must be one of ${COMPONENT_STATUSES.join(', ')}` }).optional(),
    /** An earlier statuspage step's incident to update (`{{steps.<id>.incident}}`); absent: a new one. */
    incident: templated(z.string().trim().min(1)).optional(),
  }),
  state: z.object({
    incident: z.string().optional(),
    shortlink: z.string().optional(),
  }),
  outputs: ['incident', 'url'],
  describe: (params) =>
    `${params.incident === undefined ? 'open' : 'update'} a status page incident (${params.status}): ${params.message}`,
  async plan(ctx, deps) {
    const { status, message, incident } = ctx.params;
    const does = `would ${incident === undefined ? 'open' : 'update'} a status page incident (${status}): ${message}`;
    const componentsOf = componentsLine(deps, ctx.params.components ?? resolvedDefault(status));
    if (!deps.statuspage) return { does, missing: ['the config file has no statuspage: section'] };
    return { does: `${does}${componentsOf}`, missing: [] };
  },
  async run(ctx, deps) {
    if (ctx.state.incident !== undefined) return;
    if (!deps.statuspage) throw new Error('the config file has no statuspage: section');
    const { port, components: ids } = deps.statuspage;
    const { status, message, name, incident } = ctx.params;
    const setTo = ctx.params.components ?? resolvedDefault(status);
    const components: Record<string, ComponentStatus> =
      setTo === undefined ? {} : Object.fromEntries(ids.map((id) => [id, setTo]));
    const answered =
      incident === undefined
        ? await port.createIncident({ name: name ?? message.slice(0, 200), status, body: message, components })
        : await port.updateIncident(incident, {
            status,
            body: message,
            ...(setTo === undefined ? {} : { components }),
          });
    ctx.state.incident = answered.id;
    ctx.state.shortlink = answered.shortlink;
    await ctx.recordChange(
      `status page incident ${answered.id} ${incident === undefined ? 'opened' : 'updated'} (${status})`,
    );
  },
  async check(ctx) {
    const id = ctx.state.incident;
    if (id === undefined) throw new Error('no status page incident was recorded');
    const where = ctx.state.shortlink ?? id;
    return {
      detail: `status page incident ${where}: ${ctx.params.status}`,
      outputs: { incident: id, url: ctx.state.shortlink ?? '' },
    };
  },
});

/** Resolving sets the components back to operational unless the step says otherwise, as resolving an incident does. */
function resolvedDefault(status: string): ComponentStatus | undefined {
  return status === 'resolved' ? 'operational' : undefined;
}

function componentsLine(deps: StatuspageStepDeps, setTo: ComponentStatus | undefined): string {
  const count = deps.statuspage?.components.length ?? 0;
  if (setTo === undefined || count === 0) return '';
  return `, setting its ${count} component${count === 1 ? '' : 's'} to ${setTo}`;
}
