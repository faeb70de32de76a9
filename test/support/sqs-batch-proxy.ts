/**
 * A loopback proxy in front of the emulator for the backfill tests: it forwards every call, counts
 * them by operation (ListObjectsV2, HeadObject, SendMessageBatch…), keeps the entries of every
 * SendMessageBatch that reached the queue, and on request makes SQS look unhappy the way it can:
 * chosen batch entries reported in `Failed` (and not delivered), or whole calls throttled.
 */
import http, { type IncomingMessage } from 'node:http';
import { describeRequest, listenOnLoopback } from './fault-proxy.js';

export interface BatchEntry {
  Id: string;
  MessageBody: string;
}

export interface BatchProxy {
  /** `http://127.0.0.1:<port>`: point AWS_ENDPOINT_URL here. */
  readonly endpoint: string;
  /** Calls seen per operation: `ListObjectsV2`, `HeadObject`, `GetObject`, `PutObject`, `SendMessageBatch`… */
  readonly calls: Record<string, number>;
  /** Each SendMessageBatch as forwarded to the emulator (failed entries removed), in order, with when it arrived. */
  readonly delivered: { at: number; entries: BatchEntry[] }[];
  /** Entries the proxy reported failed, with how often each body was refused. */
  readonly refused: Map<string, number>;
  /**
   * Reports in `Failed`, without delivering it, every entry whose body `match` accepts, the first
   * `times` times it is sent (default: always).
   */
  failEntries(match: (body: string) => boolean, times?: number): void;
  /** Answers the next `times` SendMessageBatch calls with SQS's throttling error. */
  throttleSends(times: number): void;
  close(): Promise<void>;
}

/** The S3 operation a path-style request is, by method and query; good enough for counting. */
function s3Operation(request: IncomingMessage, query: string, path: string): string {
  const method = request.method ?? 'GET';
  const isBucket = /^\/[^/]+\/?$/.test(path);
  if (method === 'GET' && isBucket && /(^|&)list-type=2(&|$)/.test(query)) return 'ListObjectsV2';
  if (method === 'GET' && isBucket) return 'ListObjects';
  if (method === 'HEAD') return isBucket ? 'HeadBucket' : 'HeadObject';
  if (method === 'GET') return 'GetObject';
  if (method === 'PUT') return isBucket ? 'PutBucket' : 'PutObject';
  return `${method} ${isBucket ? 'bucket' : 'object'}`;
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.once('end', () => resolve(Buffer.concat(parts)));
    request.once('error', reject);
  });
}

export async function startBatchProxy(target: string): Promise<BatchProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: false, maxSockets: 256 });
  const calls: Record<string, number> = {};
  const delivered: { at: number; entries: BatchEntry[] }[] = [];
  const refused = new Map<string, number>();
  const failRules: { match: (body: string) => boolean; left: number }[] = [];
  let throttlesLeft = 0;

  function send(
    request: IncomingMessage,
    body: Buffer,
    onAnswer: (status: number, headers: http.IncomingHttpHeaders, answer: Buffer) => void,
    onError: () => void,
  ): void {
    const headers = { ...request.headers, 'content-length': String(body.byteLength) };
    const outgoing = http.request({ host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers, agent }, (answer) => {
      readBody(answer).then((buffer) => onAnswer(answer.statusCode ?? 502, answer.headers, buffer), onError);
    });
    outgoing.on('error', onError);
    outgoing.end(body);
  }

  const server = http.createServer((request, response) => {
    const info = describeRequest(request);
    const operation = info.service === 's3' ? s3Operation(request, info.query, info.path) : (info.operation ?? `${info.service} ${info.method}`);
    calls[operation] = (calls[operation] ?? 0) + 1;
    void readBody(request).then((body) => {
      const reply = (status: number, headers: http.IncomingHttpHeaders | Record<string, string>, answer: Buffer | string) => {
        const buffer = typeof answer === 'string' ? Buffer.from(answer) : answer;
        // A HEAD answer's content-length is the object's size: keep it as the emulator sent it.
        if (request.method === 'HEAD') response.writeHead(status, headers);
        else {
          const { 'content-length': _length, 'transfer-encoding': _encoding, ...rest } = headers as Record<string, string>;
          response.writeHead(status, { ...rest, 'content-length': String(buffer.byteLength) });
        }
        response.end(buffer);
      };
      const failed = () => request.socket.destroy();
      if (operation !== 'SendMessageBatch') {
        send(request, body, reply, failed);
        return;
      }
      if (throttlesLeft > 0) {
        throttlesLeft -= 1;
        // AWS JSON 1.0 with the awsQueryCompatible trait, as SQS answers when it sheds load.
        reply(
          400,
          { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'RequestThrottled;Sender', 'x-amzn-requestid': 'throttled' },
          JSON.stringify({ __type: 'com.amazonaws.sqs#RequestThrottled', message: 'Rate exceeded' }),
        );
        return;
      }
      const input = JSON.parse(body.toString('utf8')) as { Entries: BatchEntry[] } & Record<string, unknown>;
      const refusedHere: BatchEntry[] = [];
      const kept = input.Entries.filter((entry) => {
        const rule = failRules.find((r) => r.left > 0 && r.match(entry.MessageBody));
        if (!rule) return true;
        rule.left -= 1;
        refused.set(entry.MessageBody, (refused.get(entry.MessageBody) ?? 0) + 1);
        refusedHere.push(entry);
        return false;
      });
      const failedEntries = refusedHere.map((entry) => ({ Id: entry.Id, SenderFault: false, Code: 'InternalError', Message: 'injected by the test proxy' }));
      if (kept.length === 0) {
        reply(200, { 'content-type': 'application/x-amz-json-1.0' }, JSON.stringify({ Successful: [], Failed: failedEntries }));
        return;
      }
      delivered.push({ at: Date.now(), entries: kept });
      send(
        request,
        Buffer.from(JSON.stringify({ ...input, Entries: kept })),
        (status, headers, answer) => {
          if (status !== 200 || failedEntries.length === 0) return reply(status, headers, answer);
          const output = JSON.parse(answer.toString('utf8')) as { Successful?: unknown[]; Failed?: unknown[] };
          reply(status, headers, JSON.stringify({ ...output, Failed: [...(output.Failed ?? []), ...failedEntries] }));
        },
        failed,
      );
    }, () => request.socket.destroy());
  });
  const listening = await listenOnLoopback(server, agent);

  return {
    endpoint: listening.endpoint,
    calls,
    delivered,
    refused,
    failEntries(match, times = Number.POSITIVE_INFINITY) {
      failRules.push({ match, left: times });
    },
    throttleSends(times) {
      throttlesLeft += times;
    },
    close: listening.close,
  };
}
