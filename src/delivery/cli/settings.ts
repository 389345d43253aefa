// The `lifeline` CLI's only settings, read in one place (as src/shared/config.ts reads the server's): where Lifeline is
// and whose token to use. Never the config file, DATABASE_URL or REDIS_URL: the server decides everything else.
export interface CliSettings {
  /** LIFELINE_URL: the server's base URL, e.g. https://lifeline.internal:3000 */
  readonly url: string | undefined;
  /** LIFELINE_TOKEN: a personal API token (`/dr token` in Slack, or `lifeline-admin token create`). */
  readonly token: string | undefined;
}

export function readCliSettings(env: Record<string, string | undefined> = process.env): CliSettings {
  const value = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  return { url: value('LIFELINE_URL'), token: value('LIFELINE_TOKEN') };
}
