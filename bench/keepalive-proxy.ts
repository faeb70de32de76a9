/**
 * Bench-only: a keep-alive front for moto. moto's server (werkzeug) answers every request with
 * `Connection: close`, so every SDK call through it pays a new TCP connection, which real S3 and
 * SQS (HTTPS with keep-alive) do not. Consumers pointed here keep their connections; this process
 * (whose CPU is not the consumer's) opens the per-request connections to moto instead.
 * It also counts the calls that pass, by kind (`GET /__bench/calls` answers and resets the counts),
 * so the report can list exactly which calls each consumer makes per file.
 *   node dist/bench/keepalive-proxy.js <moto endpoint>   → prints {"port": n}
 */
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

const target = new URL(process.argv[2]!);
const upstream = new http.Agent({ keepAlive: false, maxSockets: 64 });
let calls: Record<string, number> = {};

/** `sqs ReceiveMessage`, `s3 GET If-Match`, `s3 PUT If-None-Match`, `s3 POST uploads`… */
function kindOf(request: IncomingMessage): string {
  const target = request.headers['x-amz-target'];
  if (typeof target === 'string') return `${target.startsWith('AmazonSQS.') ? 'sqs' : 'json'} ${target.split('.').pop()}`;
  const auth = String(request.headers.authorization ?? '');
  if (/\/monitoring\/aws4_request/.test(auth) || /Action=PutMetricData/.test(request.url ?? '')) return 'cloudwatch PutMetricData';
  const query = (request.url ?? '').split('?')[1] ?? '';
  const parts = [`s3 ${request.method}`];
  if (/(^|&)uploads(=|&|$)/.test(query)) parts.push('uploads');
  if (/(^|&)partNumber=/.test(query)) parts.push('part');
  if (/(^|&)uploadId=/.test(query) && request.method === 'POST') parts.push('complete');
  if (request.headers['if-match']) parts.push('If-Match');
  if (request.headers['if-none-match']) parts.push('If-None-Match');
  return parts.join(' ');
}

const server = http.createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, (request, response) => {
  if (request.url === '/__bench/calls') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(calls));
    calls = {};
    return;
  }
  const kind = kindOf(request);
  calls[kind] = (calls[kind] ?? 0) + 1;
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
