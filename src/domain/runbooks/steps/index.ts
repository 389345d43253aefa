// Every kind of runbook step. Adding a kind is a folder here and one line in STEP_KINDS below (and, if it calls an
// outside system nothing else calls, one field in StepDeps). The folder's index.ts calls `defineStepKind` (see
// ../step-kind.ts) with its id (the key in the config file), its params schema, its outputs, its state, and its
// describe, plan (read calls only), run (the one outside change, recorded before it is waited on) and check.
import type { StepKind } from '../step-kind.js';
import type { AwsStepDeps } from './aws.js';
import { backupKind } from './backup/index.js';
import { confirmKind } from './confirm/index.js';
import { dnsSwitchKind } from './dns-switch/index.js';
import { ecsRedeployKind } from './ecs-redeploy/index.js';
import { ecsScaleKind } from './ecs-scale/index.js';
import { httpCheckKind, type HttpCheckDeps } from './http-check/index.js';
import { notifyKind, type NotifyDeps } from './notify/index.js';
import { rdsRestoreSnapshotKind } from './rds-restore-snapshot/index.js';
import type { RecoveryJobsStepDeps } from './recovery-jobs.js';
import { restoreKind } from './restore/index.js';
import { secretUpdateKind } from './secret-update/index.js';
import { statuspageKind, type StatuspageStepDeps } from './statuspage/index.js';
import { vercelEnvKind } from './vercel-env/index.js';
import { vercelRollbackKind } from './vercel-rollback/index.js';
import type { VercelStepDeps } from './vercel.js';

/** What the step kinds call, each kind using only its part: wiring passes the real clients, tests the doubles. */
export interface StepDeps
  extends NotifyDeps, HttpCheckDeps, AwsStepDeps, VercelStepDeps, StatuspageStepDeps, RecoveryJobsStepDeps {
  /** Between two polls while a step waits on an outside change (tests make it short). */
  readonly pollMs: number;
}

export const STEP_KINDS: readonly StepKind<StepDeps>[] = [
  confirmKind,
  notifyKind,
  httpCheckKind,
  ecsScaleKind,
  ecsRedeployKind,
  rdsRestoreSnapshotKind,
  dnsSwitchKind,
  secretUpdateKind,
  vercelRollbackKind,
  vercelEnvKind,
  statuspageKind,
  restoreKind,
  backupKind,
];
