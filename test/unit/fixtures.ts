// Shared fixtures for the unit tests: the example config, incidents, and a service double that records calls.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfigText, type FileConfig } from '../../src/shared/config.js';
import type { Incident } from '../../src/domain/incidents/model.js';
import type { IncidentService } from '../../src/domain/incidents/service.js';

export const EXAMPLE_PATH = fileURLToPath(new URL('../../lifeline.example.yml', import.meta.url));
export const EXAMPLE_TEXT = readFileSync(EXAMPLE_PATH, 'utf8');

/** The env the example needs: its five ${VAR}s. */
export const EXAMPLE_ENV: Readonly<Record<string, string>> = {
  PD_KEY_ONCALL: 'rk-oncall-1111111111',
  PD_KEY_LEAD: 'rk-lead-2222222222',
  PD_KEY_CTO: 'rk-cto-3333333333',
  PD_KEY_CEO: 'rk-ceo-4444444444',
  PRODUCTION_DATABASE_URL: 'postgres://app:prod-s3cret-pw@db.prod.internal:5432/solosuccess',
  STAGING_DATABASE_URL: 'postgres://app:staging-s3cret-pw@db.staging.internal:5432/solosuccess',
};

export function exampleFile(): FileConfig {
  return parseConfigText(EXAMPLE_TEXT, EXAMPLE_ENV);
}

export const T0 = new Date('2024-03-05T07:08:09.000Z');

export function minutesAfter(base: Date, minutes: number): Date {
  return new Date(base.getTime() + minutes * 60_000);
}

export function makeIncident(overrides: Partial<Incident> = {}): Incident {
  return {
    number: 7,
    severity: 'sev2',
    title: 'Checkout is failing',
    declaredBy: 'U0DECLARER',
    declaredAt: T0,
    declaredIn: 'C0EMERGENCY',
    card: { channel: 'C0EMERGENCY', ts: '1700000001.000100' },
    acknowledgedBy: undefined,
    acknowledgedAt: undefined,
    resolvedBy: undefined,
    resolvedAt: undefined,
    resolutionNote: undefined,
    ladderGeneration: 1,
    statusPage: undefined,
    source: undefined,
    ...overrides,
  };
}

export interface ServiceCall {
  readonly method: string;
  readonly args: readonly unknown[];
}

/**
 * An IncidentService double: every call is recorded; methods given in `impl` answer, any other method throws.
 * With no `impl` at all it is the "must not be called" service for parse-only and refusal tests.
 */
export function fakeService(impl: Record<string, (...args: never[]) => unknown> = {}): {
  service: IncidentService;
  calls: ServiceCall[];
} {
  const calls: ServiceCall[] = [];
  const service = new Proxy(
    {},
    {
      get(_target, prop) {
        if (typeof prop !== 'string' || prop === 'then') return undefined;
        return (...args: unknown[]) => {
          calls.push({ method: prop, args });
          const fn = impl[prop] as ((...a: unknown[]) => unknown) | undefined;
          if (!fn) throw new Error(`IncidentService.${prop} must not be called here`);
          return fn(...args);
        };
      },
    },
  ) as unknown as IncidentService;
  return { service, calls };
}

/** Every string under a key named `text` anywhere in a Block Kit structure. */
export function allTexts(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const v of value) allTexts(v, out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'text' && typeof v === 'string') out.push(v);
      else allTexts(v, out);
    }
  }
  return out;
}
