// The plan's "Run application health checks": one GET with a hard timeout, its status and latency.
export interface HealthProbeResult {
  readonly ok: boolean;
  readonly status: number | undefined;
  readonly latencyMs: number;
  readonly error?: string;
}

export async function probeHealth(url: string, timeoutMs = 10_000): Promise<HealthProbeResult> {
  const started = performance.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    await response.body?.cancel();
    return { ok: response.ok, status: response.status, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    return {
      ok: false,
      status: undefined,
      latencyMs: Math.round(performance.now() - started),
      error: (err as Error).message,
    };
  }
}

export function describeHealth(url: string, result: HealthProbeResult): string {
  const outcome = result.status !== undefined ? `HTTP ${result.status}` : `no answer (${result.error ?? 'error'})`;
  return `${url}: ${outcome} in ${result.latencyMs} ms`;
}
