// A local health target whose answers the test decides: a script of statuses for the first requests, then `mode`
// (a status, or `hang`: never answers). Counts the requests it got.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type TargetMode = number | 'hang';

export interface HealthTarget {
  readonly url: string;
  /** Requests received so far. */
  readonly requests: number;
  /** The answer to every request after the script. */
  mode: TargetMode;
  /** Answers to the next requests, in order, before `mode` applies again. */
  script(answers: readonly TargetMode[]): void;
  close(): Promise<void>;
}

export async function startHealthTarget(mode: TargetMode = 200): Promise<HealthTarget> {
  let requests = 0;
  const queued: TargetMode[] = [];
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((_req, res) => {
    requests++;
    const answer = queued.shift() ?? target.mode;
    if (answer === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 400 ? 'ok' : 'failing');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const target: HealthTarget = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`,
    get requests() {
      return requests;
    },
    mode,
    script(answers) {
      queued.push(...answers);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return target;
}
