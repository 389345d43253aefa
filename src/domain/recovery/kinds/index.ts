// Every kind of recovery job, by the stable id its jobs are stored under (recovery_jobs.kind).
//
// Adding a kind is a folder here and one line in the table below. The folder's index.ts calls `defineKind` with:
//   - `id`: the stable id (also added to JobKind and JobParams in ../model.ts, which say what a request carries);
//   - `state`: a zod schema of what the kind keeps between steps (every field optional, JSON only); it is checked
//     whenever a job is read back, so a job resumed after a crash or a lease takeover never runs on a state it
//     does not understand;
//   - `stepNames`: each step's stable id and the text people see; ids are stored with every step record, so a
//     released id never changes (a migration maps it if it must);
//   - `plan`: read calls only, saying in words what the job will do (and storing what it chose in the state);
//   - `steps`: in order, each with its id, `run` (which does and checks its work, and returns its one-line result),
//     whether it is destructive and interruptible, and its deadline if not the default;
//   - `onFailure` (put back and clean up) and `summarise` (headline and verified lines).
// TypeScript then refuses a state key or a step id the kind does not declare.
import type { JobKind } from '../model.js';
import type { Kind } from '../kind.js';
import { backupKind, type BackupKindDeps } from './backup/index.js';
import { drillKind, type DrillKindDeps } from './drill/index.js';
import type { EcsKindDeps } from './ecs-service.js';
import { redeployKind } from './redeploy/index.js';
import { restoreKind, type RestoreKindDeps } from './restore/index.js';
import { scaleKind } from './scale/index.js';

/** What the runner runs: each kind under its own id. */
export type KindsTable = { readonly [K in JobKind]: Kind<K> };

export interface KindsDeps {
  readonly restore: RestoreKindDeps;
  readonly ecs: EcsKindDeps;
  readonly backup: BackupKindDeps;
  readonly drill: DrillKindDeps;
}

export function kindsTable(deps: KindsDeps): KindsTable {
  return {
    restore: restoreKind(deps.restore),
    scale: scaleKind(deps.ecs),
    redeploy: redeployKind(deps.ecs),
    backup: backupKind(deps.backup),
    drill: drillKind(deps.drill),
  };
}
