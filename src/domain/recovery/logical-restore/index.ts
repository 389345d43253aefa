// Logical restore of an env's database from a backup in its store, one resumable step at a time.
//
// The job runner calls preflight → restoreIntoFresh → swap → verify → analyzeTarget → safetyBackup → cleanup
// (putBack instead when verify fails), persisting the JSON `state` each step returns. A worker that dies mid-step
// leaves the job resumable: every step may be called again with the last state it returned, and reads the server's
// own truth (which databases exist) rather than trusting that the previous attempt got as far as it meant to.
//
// The target is only ever replaced by a rename inside one transaction (swap), after the backup was restored
// completely into a fresh database beside it. Until then the target is untouched; after it, the previous
// database stays beside it (<target>_old_<run>), so putBack can return it, until its safety copy is in the store.
//
// The steps compose the PostgreSQL tools (src/pgtools) with the backups domain (the safety copy is a backup).
export { cleanup } from './cleanup.js';
export { namesOf, type LogicalRestorePlan, type RestoreState, type StepOutcome } from './plan.js';
export { preflight } from './preflight.js';
export { restoreIntoFresh } from './restore.js';
export { safetyBackup } from './safety-copy.js';
export { putBack, swap } from './swap.js';
export { analyzeTarget, verify } from './verify.js';
export { verifiedLine, verifyDatabase, type VerifyResult } from '../../../pgtools/verify.js';
