/** A reason the sandbox cannot start that its user can fix (a setting, a missing service): shown as one line. */
export class SetupError extends Error {}
