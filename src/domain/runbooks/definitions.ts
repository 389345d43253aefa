// The runbooks of the config file, checked against the step kinds at startup: every step's kind and params, its id,
// and every `{{steps.<id>.<output>}}` (an earlier step's, an output its kind has). A problem stops startup naming its
// path, as the rest of the config's problems do.
import { createHash } from 'node:crypto';
import { ConfigError, formatPath, type FileConfig } from '../../shared/config.js';
import { TEMPLATE, type StepKind } from './step-kind.js';
import { STEP_KINDS, type StepDeps } from './steps/index.js';

export interface RunbookStep {
  readonly index: number;
  /** Its `id`, or `step-<n>` (1-based) when the file gives none: what its outputs are found under. */
  readonly id: string;
  readonly kind: StepKind<StepDeps>;
  /** As the file holds them, checked by the kind; `{{steps...}}` are filled in when the step runs. */
  readonly params: unknown;
}

export interface Runbook {
  readonly name: string;
  readonly title: string;
  readonly approval: 'once' | 'each_step';
  readonly dryRunSchedule: string | undefined;
  readonly steps: readonly RunbookStep[];
  /** A hash of the runbook as the file holds it: a run keeps the version it was approved with. */
  readonly version: string;
}

const STEP_ID = /^[a-z][a-z0-9_]{0,39}$/;

/** Every runbook of the file, checked; throws ConfigError listing every problem with its path. */
export function loadRunbooks(
  file: Pick<FileConfig, 'runbooks'>,
  kinds: readonly StepKind<StepDeps>[] = STEP_KINDS,
): ReadonlyMap<string, Runbook> {
  const byId = new Map(kinds.map((kind) => [kind.id, kind]));
  const problems: string[] = [];
  const runbooks = new Map<string, Runbook>();
  for (const [name, config] of Object.entries(file.runbooks)) {
    const steps: RunbookStep[] = [];
    const outputsOf = new Map<string, readonly string[]>();
    config.steps.forEach((raw, index) => {
      const path = ['runbooks', name, 'steps', index];
      const { id: givenId, ...rest } = raw;
      const keys = Object.keys(rest);
      if (givenId !== undefined && (typeof givenId !== 'string' || !STEP_ID.test(givenId))) {
        problems.push(`${formatPath([...path, 'id'])}: must be lower_snake_case, up to 40 characters`);
      }
      const id = typeof givenId === 'string' ? givenId : `step-${index + 1}`;
      if (outputsOf.has(id)) problems.push(`${formatPath([...path, 'id'])}: "${id}" is already an earlier step's id`);
      if (keys.length !== 1) {
        const known = [...byId.keys()].join(', ');
        problems.push(
          `${formatPath(path)}: a step is one kind (${known}) and an optional id; found ${keys.length === 0 ? 'no kind' : keys.join(', ')}`,
        );
        return;
      }
      const kindId = keys[0]!;
      const kind = byId.get(kindId);
      if (!kind) {
        problems.push(`${formatPath([...path, kindId])}: unknown step kind (kinds: ${[...byId.keys()].join(', ')})`);
        return;
      }
      const parsed = kind.parseParams(rest[kindId]);
      if (!parsed.ok) {
        for (const issue of parsed.issues) {
          const at = [...path, kindId, ...issue.path];
          if (issue.code === 'unrecognized_keys') {
            for (const key of issue.keys) problems.push(`${formatPath([...at, key])}: unknown key`);
          } else {
            const message = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
            problems.push(`${formatPath(at)}: ${message}`);
          }
        }
        return;
      }
      problems.push(...templateProblems(rest[kindId], [...path, kindId], outputsOf));
      outputsOf.set(id, kind.outputs);
      steps.push({ index, id, kind, params: parsed.params });
    });
    runbooks.set(name, {
      name,
      title: config.title,
      approval: config.approval,
      dryRunSchedule: config.dry_run_schedule,
      steps,
      version: createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12),
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return runbooks;
}

/** Every `{{...}}` in the step's string values must name an earlier step and one of its kind's outputs. */
function templateProblems(
  value: unknown,
  path: readonly (string | number)[],
  outputsOf: ReadonlyMap<string, readonly string[]>,
): string[] {
  if (typeof value === 'string') {
    const problems: string[] = [];
    const known = new Set([...value.matchAll(TEMPLATE)].map((m) => m[0]));
    for (const match of value.matchAll(/\{\{[^}]*\}\}/g)) {
      if (!known.has(match[0])) {
        problems.push(`${formatPath(path)}: ${match[0]} is not {{steps.<id>.<output>}}`);
      }
    }
    for (const [, stepId, output] of value.matchAll(TEMPLATE)) {
      const outputs = outputsOf.get(stepId!);
      if (!outputs) {
        problems.push(`${formatPath(path)}: {{steps.${stepId}.${output}}} names no earlier step "${stepId}"`);
      } else if (!outputs.includes(output!)) {
        const has = outputs.length > 0 ? outputs.join(', ') : 'none';
        problems.push(`${formatPath(path)}: step "${stepId}" has no output "${output}" (its outputs: ${has})`);
      }
    }
    return problems;
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => templateProblems(v, [...path, i], outputsOf));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => templateProblems(v, [...path, k], outputsOf));
  }
  return [];
}

/**
 * The params with every `{{steps.<id>.<output>}}` replaced: by the output when `outputs` has it, else by what
 * `unknown` says (a dry run's placeholder).
 */
export function fillTemplates(
  value: unknown,
  outputs: ReadonlyMap<string, Readonly<Record<string, string>>>,
  unknown: (stepId: string, output: string) => string,
): unknown {
  if (typeof value === 'string') {
    return value.replace(TEMPLATE, (_all, stepId: string, output: string) => {
      return outputs.get(stepId)?.[output] ?? unknown(stepId, output);
    });
  }
  if (Array.isArray(value)) return value.map((v) => fillTemplates(v, outputs, unknown));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillTemplates(v, outputs, unknown)]));
  }
  return value;
}
