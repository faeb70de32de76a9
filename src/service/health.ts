/**
 * The health endpoint ECS and load balancers poll. `/healthz` fails only when a poller is idle and
 * has not completed a receive for too long (a stuck loop), never because files are long;
 * `/readyz` answers 200 once start-up checks passed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PollerState {
  /** Epoch ms of the last completed receive (with or without messages). */
  lastReceiveAt: number;
  /** A poller waiting on its batch cannot receive, and that is not a fault. */
  busy: boolean;
}

export interface HealthSource {
  pollers(): PollerState[];
  ready(): boolean;
  details(): Record<string, unknown>;
}

export function isHealthy(pollers: PollerState[], maxPollAgeMs: number, now = Date.now()): boolean {
  if (pollers.length === 0) return false;
  return pollers.every((poller) => poller.busy || now - poller.lastReceiveAt <= maxPollAgeMs);
}

export async function startHealthServer(port: number, maxPollAgeSeconds: number, source: HealthSource): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    let ok: boolean;
    if (path === '/healthz') ok = isHealthy(source.pollers(), maxPollAgeSeconds * 1000);
    else if (path === '/readyz') ok = source.ready();
    else {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ ok, ...source.details() }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve());
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
