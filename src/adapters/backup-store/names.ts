// The one naming rule every store enforces before it touches a path or a key.

/** Object names are plain file names: no folders, no `..`, nothing a shell or a path join could misread. */
export function assertPlainName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes('..')) {
    throw new Error(`"${name}" is not a plain file name`);
  }
}
