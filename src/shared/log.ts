import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

const TOKEN_PATTERNS: readonly RegExp[] = [
  /xox[abposr]-[A-Za-z0-9-]+/g, // Slack bot/user tokens
  /xapp-[A-Za-z0-9-]+/g, // Slack app-level tokens
  /llt_[A-Za-z0-9_-]+/g, // Lifeline's personal API tokens (src/domain/access/tokens.ts)
  /(?<=\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@\s/]+(?=@)/gi, // the password part of any scheme://user:password@host
];

/** Replaces every known secret, and anything shaped like a token or URL password, with [redacted]. */
export function createRedactor(secrets: readonly string[]): (text: string) => string {
  // Log lines are JSON, where " and \ inside a secret appear escaped: look for both spellings.
  // Longest first, so a secret that contains another is removed whole.
  const spellings = secrets.flatMap((secret) => [secret, JSON.stringify(secret).slice(1, -1)]);
  const literal = [...new Set(spellings)].sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = text;
    for (const secret of literal) out = out.split(secret).join('[redacted]');
    for (const pattern of TOKEN_PATTERNS) out = out.replace(pattern, '[redacted]');
    return out;
  };
}

export function createLogger(
  level: string,
  secrets: readonly string[],
  sink: { write(line: string): unknown } = process.stdout,
): Logger {
  const redact = createRedactor(secrets);
  // Scrubbing the serialised line catches secrets wherever they hide: messages, error texts, nested fields.
  return pino({ level, base: { service: 'lifeline' } }, { write: (line: string) => sink.write(redact(line)) });
}
