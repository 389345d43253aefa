import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { match } from 'path-to-regexp';
import type { Db } from '../../shared/db/pool.js';
import type { Metrics } from '../../shared/metrics.js';
import { within } from '../../shared/timeout.js';

export interface HealthReport {
  readonly ok: boolean;
  readonly postgres: 'up' | 'down';
  readonly redis: 'up' | 'down';
  readonly down?: readonly string[];
}

const CHECK_TIMEOUT_MS = 2_000;

export function createHealthCheck(db: Db, redis: Redis): () => Promise<HealthReport> {
  return async () => {
    const [pg, rd] = await Promise.allSettled([
      within(db.query('SELECT 1'), CHECK_TIMEOUT_MS),
      within(redis.ping(), CHECK_TIMEOUT_MS),
    ]);
    const postgres = pg.status === 'fulfilled' ? 'up' : 'down';
    const redisState = rd.status === 'fulfilled' ? 'up' : 'down';
    const down = [...(postgres === 'down' ? ['postgres'] : []), ...(redisState === 'down' ? ['redis'] : [])];
    return { ok: down.length === 0, postgres, redis: redisState, ...(down.length > 0 ? { down } : {}) };
  };
}

export interface Route {
  readonly path: string;
  readonly method: string[];
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * Whether the request carries `Authorization: Bearer <token>`. Both sides are hashed first so timingSafeEqual compares
 * equal lengths, and the time taken says nothing about the token, not even its length.
 */
export function hasBearer(req: IncomingMessage, token: string): boolean {
  const presented = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/**
 * GET /healthz and GET /metrics, in the shape Bolt's customRoutes takes (and our own server for the worker role).
 * With `metricsToken` set, /metrics answers only requests that carry it; /healthz stays open for load balancers.
 */
export function operationalRoutes(
  check: () => Promise<HealthReport>,
  metrics: Metrics,
  metricsToken?: string,
): Route[] {
  return [
    {
      path: '/healthz',
      method: ['GET'],
      handler: (_req, res) => {
        void check().then((report) => {
          res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify(report));
        });
      },
    },
    {
      path: '/metrics',
      method: ['GET'],
      handler: (req, res) => {
        if (metricsToken !== undefined && !hasBearer(req, metricsToken)) {
          res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="lifeline metrics"' });
          res.end('/metrics needs Authorization: Bearer <METRICS_TOKEN>');
          return;
        }
        void metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': metrics.registry.contentType });
            res.end(text);
          },
          (err: Error) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(err.message);
          },
        );
      },
    },
  ];
}

/**
 * The worker role has no Bolt receiver; this serves its routes on PORT. Paths are matched as Bolt's customRoutes
 * match them (path-to-regexp), so one route table means the same in every role.
 */
export function serveRoutes(port: number, routes: readonly Route[]): Promise<Server> {
  const matchers = routes.map((route) => {
    const matcher = match(route.path, { decode: decodeURIComponent });
    return {
      route,
      matches(path: string): boolean {
        try {
          return matcher(path) !== false;
        } catch {
          return false; // a malformed %-escape matches nothing
        }
      },
    };
  });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = matchers.find((m) => m.matches(path) && m.route.method.includes(req.method ?? 'GET'))?.route;
    if (route) return route.handler(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}
