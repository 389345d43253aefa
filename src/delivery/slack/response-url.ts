// Replies at a command's response_url. Bolt's respond() goes through fetch, which never reads the answer's body and
// builds web streams for every call: under load that was a quarter of Lifeline's CPU per command. A plain request on
// a keep-alive agent does the same POST for a fraction of it.
import http from 'node:http';
import https from 'node:https';

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/** POSTs `message` as JSON to `url`; rejects on a network error, a timeout, or an answer that is not 2xx. */
export async function postToResponseUrl(url: string, message: object, timeoutMs: number): Promise<void> {
  try {
    await post(url, message, timeoutMs);
  } catch (err) {
    // A kept-alive connection the server closed just as it was reused never carried the request: send it again.
    if (!(err instanceof StaleConnection)) throw err;
    await post(url, message, timeoutMs);
  }
}

class StaleConnection extends Error {}

function post(url: string, message: object, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      reject(new Error(`Failed to respond to the response_url: unsupported protocol ${target.protocol}`));
      return;
    }
    const body = JSON.stringify(message);
    const send = target.protocol === 'https:' ? https.request : http.request;
    const request = send(
      target,
      {
        method: 'POST',
        agent: agents[target.protocol],
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (response) => {
        // Reading the answer to its end frees the connection for the next reply.
        response.resume();
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else
            reject(
              new Error(`Failed to respond to the response_url: ${status} ${response.statusMessage ?? ''}`.trim()),
            );
        });
        response.on('error', reject);
      },
    );
    request.on('timeout', () =>
      request.destroy(new Error(`Failed to respond to the response_url: no answer within ${timeoutMs} ms`)),
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      reject(request.reusedSocket && err.code === 'ECONNRESET' ? new StaleConnection(err.message) : err);
    });
    request.end(body);
  });
}
