/**
 * Bench-only: a keep-alive front for moto. moto's server (werkzeug) answers every request with
 * `Connection: close`, so every SDK call through it pays a new TCP connection, which real S3 and
 * SQS (HTTPS with keep-alive) do not. Consumers pointed here keep their connections; this process
 * (whose CPU is not the consumer's) opens the per-request connections to moto instead.
 *   node dist/bench/keepalive-proxy.js <moto endpoint>   → prints {"port": n}
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const target = new URL(process.argv[2]!);
const upstream = new http.Agent({ keepAlive: false, maxSockets: 64 });

const server = http.createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, (request, response) => {
  const forward = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: request.headers,
      agent: upstream,
    },
    (answer) => {
      const headers = { ...answer.headers };
      delete headers.connection;
      response.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(response);
    },
  );
  forward.on('error', (error) => {
    if (!response.headersSent) response.writeHead(502);
    response.end(String(error));
  });
  request.pipe(forward);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
