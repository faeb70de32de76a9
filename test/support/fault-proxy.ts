/**
 * A fault-injecting HTTP proxy for tests: it sits on loopback in front of the emulator and, for a
 * configurable share of the calls to each AWS service, answers the way a struggling AWS does
 * (503 SlowDown from S3, ServiceUnavailable / Throttling from the JSON services) or drops the
 * connection, before or after the emulator did the work. Everything injected is counted, per
 * service and kind, so a test can report exactly what its subject survived.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { seededRandom, seedFromEnv } from './random.js';

/** Which AWS service a request is for, read from its SigV4 credential scope. */
export type ServiceName = 's3' | 'sqs' | 'cloudwatch' | 'other';

/**
 * - `throttle`: answered here with the service's own throttling error (S3 `503 SlowDown`, SQS
 *   `503 ServiceUnavailable`, CloudWatch `400 Throttling`); the emulator never sees the call.
 * - `reset`: the connection is destroyed before the request is forwarded (ECONNRESET / socket hang up).
 * - `lost-response`: forwarded, the emulator does the work, then the connection is destroyed
 *   instead of answering; the client cannot know the call succeeded and must be idempotent.
 */
export type FaultKind = 'throttle' | 'reset' | 'lost-response';

export interface RequestInfo {
  service: ServiceName;
  method: string;
  /** Decoded URL path (for S3 path-style: `/bucket/key`). */
  path: string;
  /** The raw query string without `?` (`partNumber=2&uploadId=…`), empty when none. */
  query: string;
  /** JSON-protocol operation (`ReceiveMessage`, `PutMetricData`…) or undefined for S3. */
  operation?: string;
}

export interface JournalEntry extends RequestInfo {
  at: number;
  fault?: FaultKind;
  /** SQS and CloudWatch request bodies (JSON), cut at 2 000 characters. */
  body?: string;
}

export interface FaultPlan {
  /** Share of calls (0–1) that get a fault, per service; unnamed services get none. */
  rates: Partial<Record<ServiceName, number>>;
  /** Kinds to choose from (uniformly) per service; default `['throttle', 'reset']`. */
  kinds?: Partial<Record<ServiceName, FaultKind[]>>;
}

export interface ProxyStats {
  /** Requests seen per service (faulted or not). */
  requests: Record<ServiceName, number>;
  /** Faults injected: `faults[service][kind]`. */
  faults: Record<ServiceName, Record<FaultKind, number>>;
  /** Faults injected per operation (`s3 GET`, `sqs ReceiveMessage`…), for the report. */
  byOperation: Record<string, number>;
  /** Responses delayed by `holdResponse` rules. */
  held: number;
  /** Requests delayed by `holdRequest` rules, and how many of their clients hung up meanwhile. */
  heldRequests: number;
  abandoned: number;
  /** S3 writes refused with KeyTooLongError (`enforceS3KeyLimit`). */
  keyTooLong: number;
  /** Calls the emulator itself failed to answer (not injected; should stay 0). */
  upstreamErrors: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: point AWS_ENDPOINT_URL here. */
  readonly endpoint: string;
  /** The PRNG seed; FAULT_PROXY_SEED=<seed> replays the same fault sequence (given the same calls). */
  readonly seed: number;
  /** Replaces the fault plan; takes effect for the next request. */
  configure(plan: FaultPlan): void;
  /**
   * Forwards the next `times` requests that `match` accepts at once, but hands the emulator's
   * answer back only after `ms`: the client works with data that may be stale by then.
   */
  holdResponse(match: (request: RequestInfo) => boolean, ms: number, times?: number): void;
  /**
   * Reads the next `times` requests that `match` accepts only after `ms`, as if their upload were
   * slow: the emulator sees nothing before then, and nothing at all if the client gives up first.
   */
  holdRequest(match: (request: RequestInfo) => boolean, ms: number, times?: number): void;
  /** Gives the next `times` requests that `match` accepts this fault, whatever the plan's rates. */
  failRequests(match: (request: RequestInfo) => boolean, fault: FaultKind, times?: number): void;
  stats(): ProxyStats;
  /** With `journal: true`: every call in arrival order, with the fault it got (for diagnosis). */
  journal(): JournalEntry[];
  /** Total faults injected, all services and kinds. */
  totalFaults(): number;
  close(): Promise<void>;
}

const SERVICES: ServiceName[] = ['s3', 'sqs', 'cloudwatch', 'other'];
const KINDS: FaultKind[] = ['throttle', 'reset', 'lost-response'];

/** SigV4 signing names → our service names. */
const SIGNING_NAMES: Record<string, ServiceName> = { s3: 's3', sqs: 'sqs', monitoring: 'cloudwatch' };

export function describeRequest(request: IncomingMessage): RequestInfo {
  const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(String(request.headers.authorization ?? ''));
  const target = String(request.headers['x-amz-target'] ?? '');
  let service: ServiceName = scope ? (SIGNING_NAMES[scope[1]!] ?? 'other') : 'other';
  if (service === 'other' && target.startsWith('AmazonSQS.')) service = 'sqs';
  if (service === 'other' && target.startsWith('GraniteServiceVersion20100801.')) service = 'cloudwatch';
  const [rawPath = '/', query = ''] = (request.url ?? '/').split('?', 2);
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    path = rawPath;
  }
  return { service, method: request.method ?? 'GET', path, query, ...(target ? { operation: target.split('.').pop()! } : {}) };
}

/** The error a real service sends when it sheds load, in that service's protocol. */
function throttleAnswer(info: RequestInfo, id: string): { status: number; headers: Record<string, string>; body: string } {
  if (info.service === 's3' || info.service === 'other') {
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>${id}</RequestId><HostId>${id}</HostId></Error>`;
    // HEAD answers carry no body; the SDK then names the error from the status alone.
    return { status: 503, headers: { 'content-type': 'application/xml', 'x-amz-request-id': id }, body: info.method === 'HEAD' ? '' : body };
  }
  // AWS JSON 1.0 with the awsQueryCompatible trait: the code also travels in x-amzn-query-error.
  const [namespace, code, status, message] =
    info.service === 'sqs'
      ? ['com.amazonaws.sqs', 'ServiceUnavailable', 503, 'Service is unable to handle request.']
      : ['com.amazonaws.cloudwatch', 'Throttling', 400, 'Rate exceeded'];
  return {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': id,
      'x-amzn-query-error': `${code};${status >= 500 ? 'Receiver' : 'Sender'}`,
    },
    body: JSON.stringify({ __type: `${namespace}#${code}`, message }),
  };
}

export interface ProxyOptions {
  /** Replays a fault sequence; default FAULT_PROXY_SEED, else a fixed seed (so CI runs the same faults each time). */
  seed?: number;
  /**
   * Answer writes of S3 keys longer than 1 024 UTF-8 bytes with 400 KeyTooLongError, as S3 does
   * (moto accepts any length, which would hide what a real bucket refuses).
   */
  enforceS3KeyLimit?: boolean;
  /** Keep a journal of every call (memory grows with the calls; for diagnosis). */
  journal?: boolean;
}

/** Bucket and key of a path-style S3 request. */
export function s3KeyOf(info: RequestInfo): { bucket: string; key: string } | undefined {
  const match = /^\/([^/]+)\/(.+)$/s.exec(info.path);
  return match ? { bucket: match[1]!, key: match[2]! } : undefined;
}

export async function startFaultProxy(target: string, options: ProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const seed = options.seed ?? seedFromEnv('FAULT_PROXY_SEED', DEFAULT_FAULT_SEED);
  const next = seededRandom(seed);
  let plan: FaultPlan = { rates: {} };
  const holds: { match: (request: RequestInfo) => boolean; ms: number; left: number }[] = [];
  const requestHolds: { match: (request: RequestInfo) => boolean; ms: number; left: number }[] = [];
  const forced: { match: (request: RequestInfo) => boolean; fault: FaultKind; left: number }[] = [];
  const stats: ProxyStats = {
    requests: Object.fromEntries(SERVICES.map((s) => [s, 0])) as ProxyStats['requests'],
    faults: Object.fromEntries(SERVICES.map((s) => [s, Object.fromEntries(KINDS.map((k) => [k, 0]))])) as ProxyStats['faults'],
    byOperation: {},
    held: 0,
    heldRequests: 0,
    abandoned: 0,
    keyTooLong: 0,
    upstreamErrors: 0,
  };
  // A fresh upstream connection per call: a kept-alive socket that the emulator closed meanwhile
  // would fail a call that no fault was planned for.
  const agent = new http.Agent({ keepAlive: false, maxSockets: 256 });
  const journal: JournalEntry[] = [];
  let sequence = 0;

  function chooseFault(info: RequestInfo): FaultKind | undefined {
    const rate = plan.rates[info.service] ?? 0;
    if (rate <= 0 || next() >= rate) return undefined;
    const kinds = plan.kinds?.[info.service] ?? ['throttle', 'reset'];
    return kinds[Math.floor(next() * kinds.length)];
  }

  function count(info: RequestInfo, kind: FaultKind): void {
    stats.faults[info.service][kind] += 1;
    const operation = `${info.service} ${info.operation ?? info.method}`;
    stats.byOperation[operation] = (stats.byOperation[operation] ?? 0) + 1;
  }

  function forward(request: IncomingMessage, response: ServerResponse, info: RequestInfo, fault: FaultKind | undefined): void {
    const hold = holds.find((rule) => rule.left > 0 && rule.match(info));
    if (hold) hold.left -= 1;
    const outgoing = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
        agent,
      },
      (answer) => {
        if (fault === 'lost-response') {
          // The emulator did the work; the client never hears of it.
          answer.resume();
          answer.once('end', () => request.socket.destroy());
          return;
        }
        if (hold) {
          const parts: Buffer[] = [];
          answer.on('data', (part: Buffer) => parts.push(part));
          answer.once('end', () => {
            stats.held += 1;
            setTimeout(() => {
              response.writeHead(answer.statusCode ?? 502, answer.headers);
              response.end(Buffer.concat(parts));
            }, hold.ms);
          });
          return;
        }
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    outgoing.on('error', () => {
      stats.upstreamErrors += 1;
      request.socket.destroy();
    });
    request.pipe(outgoing);
  }

  function keyTooLong(info: RequestInfo): boolean {
    if (!options.enforceS3KeyLimit || info.service !== 's3' || (info.method !== 'PUT' && info.method !== 'POST')) return false;
    const target = s3KeyOf(info);
    return target !== undefined && Buffer.byteLength(target.key) > 1024;
  }

  const server = http.createServer((request, response) => {
    const info = describeRequest(request);
    stats.requests[info.service] += 1;
    if (keyTooLong(info)) {
      stats.keyTooLong += 1;
      const size = Buffer.byteLength(s3KeyOf(info)!.key);
      const body =
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<Error><Code>KeyTooLongError</Code><Message>Your key is too long</Message><Size>${size}</Size><MaxSizeAllowed>1024</MaxSizeAllowed><RequestId>keylimit</RequestId></Error>`;
      request.resume();
      request.once('end', () => {
        response.writeHead(400, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) });
        response.end(body);
      });
      return;
    }
    const rule = forced.find((candidate) => candidate.left > 0 && candidate.match(info));
    if (rule) rule.left -= 1;
    const fault = rule ? rule.fault : chooseFault(info);
    if (fault) count(info, fault);
    if (options.journal) {
      const entry: JournalEntry = { ...info, at: Date.now(), ...(fault ? { fault } : {}) };
      journal.push(entry);
      if (info.service === 'sqs' || info.service === 'cloudwatch') {
        const parts: Buffer[] = [];
        request.on('data', (part: Buffer) => parts.push(part));
        request.once('end', () => (entry.body = Buffer.concat(parts).toString('utf8').slice(0, 2000)));
      }
    }
    if (fault === 'reset') {
      request.socket.destroy();
      return;
    }
    if (fault === 'throttle') {
      const answer = throttleAnswer(info, `fault-${seed}-${++sequence}`);
      // Read the request body first so the client is not cut off mid-upload (that would be a reset).
      request.resume();
      request.once('end', () => {
        response.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
        response.end(answer.body);
      });
      return;
    }
    const slow = fault ? undefined : requestHolds.find((rule) => rule.left > 0 && rule.match(info));
    if (slow) {
      slow.left -= 1;
      stats.heldRequests += 1;
      request.pause();
      setTimeout(() => {
        if (request.socket.destroyed) {
          stats.abandoned += 1;
          return;
        }
        forward(request, response, info, fault);
      }, slow.ms);
      return;
    }
    forward(request, response, info, fault);
  });
  server.keepAliveTimeout = 5_000;
  const listening = await listenOnLoopback(server, agent);

  return {
    endpoint: listening.endpoint,
    seed,
    configure(newPlan) {
      plan = newPlan;
    },
    holdResponse(match, ms, times = 1) {
      holds.push({ match, ms, left: times });
    },
    holdRequest(match, ms, times = 1) {
      requestHolds.push({ match, ms, left: times });
    },
    failRequests(match, fault, times = 1) {
      forced.push({ match, fault, left: times });
    },
    stats: () => structuredClone(stats),
    journal: () => [...journal],
    totalFaults: () => SERVICES.reduce((sum, s) => sum + KINDS.reduce((n, k) => n + stats.faults[s][k], 0), 0),
    close: listening.close,
  };
}

/**
 * Listens on a free loopback port. close() ends the clients' sockets at once (a kept-alive one would
 * hold the server open), the upstream agent's too, then the server.
 */
export async function listenOnLoopback(server: http.Server, agent: http.Agent): Promise<{ endpoint: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A client that went away mid-request is not our failure.
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The fault sequence CI replays on every run; FAULT_PROXY_SEED=<n> or =random explores others. */
const DEFAULT_FAULT_SEED = 20_261_130;
