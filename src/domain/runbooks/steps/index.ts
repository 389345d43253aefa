// Every kind of runbook step. Adding a kind is a folder here and one line in STEP_KINDS below (and, if it calls an
// outside system nothing else calls, one field in StepDeps). The folder's index.ts calls `defineStepKind` (see
// ../step-kind.ts) with its id (the key in the config file), its params schema, its outputs, its state, and its
// describe, plan (read calls only), run (the one outside change, recorded before it is waited on) and check.
import type { StepKind } from '../step-kind.js';
import { confirmKind } from './confirm/index.js';
import { httpCheckKind, type HttpCheckDeps } from './http-check/index.js';
import { notifyKind, type NotifyDeps } from './notify/index.js';

/** What the step kinds call, each kind using only its part: wiring passes the real clients, tests the doubles. */
export interface StepDeps extends NotifyDeps, HttpCheckDeps {
  /** Between two polls while a step waits on an outside change (tests make it short). */
  readonly pollMs: number;
}

export const STEP_KINDS: readonly StepKind<StepDeps>[] = [notifyKind, confirmKind, httpCheckKind];
