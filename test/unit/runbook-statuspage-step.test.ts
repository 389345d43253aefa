// The statuspage step kind against the in-memory Statuspage: a new incident with the configured components, an
// update of an earlier step's incident, resolved setting components back to operational, no second call on resume,
// and a plan that names a missing `statuspage:` section.
import { describe, expect, it } from 'vitest';
import { MemoryStatuspage } from '../../src/adapters/statuspage/memory.js';
import { statuspageKind } from '../../src/domain/runbooks/steps/statuspage/index.js';
import { stepHarness } from '../support/step-harness.js';

function deps() {
  const port = new MemoryStatuspage();
  return { port, deps: { statuspage: { port, components: ['cmp_prod', 'cmp_api'] } } };
}

describe('statuspage step', () => {
  it('plans the incident and its components; with no statuspage: configured, says so', async () => {
    const { port, deps: configured } = deps();
    const params = { status: 'investigating', message: 'Failing over to us-west-2', components: 'major_outage' };
    expect(await stepHarness(statuspageKind, params, configured).plan()).toEqual({
      does: 'would open a status page incident (investigating): Failing over to us-west-2, setting its 2 components to major_outage',
      missing: [],
    });
    expect(port.calls).toEqual([]);
    const none = await stepHarness(statuspageKind, params, { statuspage: undefined }).plan();
    expect(none.missing).toEqual(['the config file has no statuspage: section']);
  });

  it('opens an incident with the components set, once, and outputs it', async () => {
    const { port, deps: configured } = deps();
    const step = stepHarness(
      statuspageKind,
      { status: 'identified', message: 'Database down', name: 'Checkout outage', components: 'major_outage' },
      configured,
    );
    await step.run();
    step.restart();
    await step.run();
    const result = await step.check();
    expect(port.calls).toEqual([{ kind: 'create' }]);
    expect(port.incidents[0]).toMatchObject({
      name: 'Checkout outage',
      status: 'identified',
      components: { cmp_prod: 'major_outage', cmp_api: 'major_outage' },
      bodies: ['Database down'],
    });
    expect(result).toEqual({
      detail: 'status page incident https://stspg.io/mem1: identified',
      outputs: { incident: 'mem1', url: 'https://stspg.io/mem1' },
    });
    expect(step.changes).toEqual(['status page incident mem1 opened (identified)']);
  });

  it("updates an earlier step's incident; resolving sets the components back to operational", async () => {
    const { port, deps: configured } = deps();
    await stepHarness(
      statuspageKind,
      { status: 'investigating', message: 'Down', components: 'partial_outage' },
      configured,
    ).run();
    const resolve = stepHarness(
      statuspageKind,
      { status: 'resolved', message: 'Back from the DR region', incident: 'mem1' },
      configured,
    );
    await resolve.run();
    expect(port.calls).toEqual([{ kind: 'create' }, { kind: 'update', id: 'mem1' }]);
    expect(port.incidents[0]).toMatchObject({
      status: 'resolved',
      components: { cmp_prod: 'operational', cmp_api: 'operational' },
      bodies: ['Down', 'Back from the DR region'],
    });
  });

  it('a monitoring update without components leaves them as they are', async () => {
    const { port, deps: configured } = deps();
    await stepHarness(
      statuspageKind,
      { status: 'investigating', message: 'Down', components: 'major_outage' },
      configured,
    ).run();
    await stepHarness(
      statuspageKind,
      { status: 'monitoring', message: 'Restored', incident: 'mem1' },
      configured,
    ).run();
    expect(port.incidents[0]?.components).toEqual({ cmp_prod: 'major_outage', cmp_api: 'major_outage' });
  });

  it('refuses a bad status or component status by its key', () => {
    const bad = statuspageKind.parseParams({ status: 'fixed', message: 'x', components: 'down', extra: 1 });
    expect(bad.ok).toBe(false);
    const paths = bad.ok
      ? []
      : bad.issues.map((i) => (i.code === 'unrecognized_keys' ? i.keys.join() : i.path.join('.')));
    expect(paths.sort()).toEqual(['components', 'extra', 'status']);
  });
});
