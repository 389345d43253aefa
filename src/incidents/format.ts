// Human-readable times for cards, replies and post-mortems. Always UTC: responders may be anywhere.

export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.round(ms / 1000));
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3_600);
  const minutes = Math.floor((totalSeconds % 3_600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return minutes > 0 ? `${hours} h ${minutes} min` : `${hours} h`;
  if (minutes > 0) return seconds > 0 ? `${minutes} min ${seconds} s` : `${minutes} min`;
  return `${seconds} s`;
}

/** The response target as the plan words it: SEV1 immediate, 15 min, 1 h, next business day (24 h). */
export function formatTarget(minutes: number): string {
  if (minutes === 0) return 'immediate';
  if (minutes === 1_440) return 'next business day (24 h)';
  return formatDuration(minutes * 60_000);
}

/** "4 min 10 s, target 15 min: met" / "2 min, target immediate: missed by 2 min". */
export function againstTarget(actualMs: number, targetMinutes: number): string {
  const overMs = actualMs - targetMinutes * 60_000;
  // Judged at the precision shown: 0.4 s over an "immediate" target reads as met, not "missed by 0 s".
  const verdict = Math.round(overMs / 1000) <= 0 ? 'met' : `missed by ${formatDuration(overMs)}`;
  return `${formatDuration(actualMs)}, target ${formatTarget(targetMinutes)}: ${verdict}`;
}

export function formatUtc(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatUtcSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
