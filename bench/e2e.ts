/**
 * End-to-end runs against the emulator: upload the files once (S3 notifies a capture queue), keep
 * the real notification bodies, then give every consumer under test a fresh queue and output
 * bucket holding exactly those notifications, and measure it while it drains them.
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createAwsClients, type AwsClients } from '../src/aws.js';
import { setupPipeline } from '../src/cli/setup.js';
import { onLines, peakRssMiB, percentile, processCpuMs, sleep, stopChild, threadCpuMs, threadNames } from './support.js';

export interface Emulated {
  endpoint: string;
  clients: AwsClients;
  inputBucket: string;
  captureQueueUrl: string;
}

export async function createInputSide(endpoint: string): Promise<Emulated> {
  const clients = createAwsClients({ endpoint, concurrency: 16 });
  const setup = await setupPipeline(clients, { inputBucket: 'bench-input', outputBucket: 'bench-unused', queue: 'bench-capture' });
  return { endpoint, clients, inputBucket: setup.inputBucket, captureQueueUrl: setup.queueUrl };
}

/**
 * Uploads local files under `prefix` and returns each one's S3 notification body, in file order.
 * Large files go up as multipart uploads (one notification all the same). moto drops some
 * notifications when many PUTs arrive at once (about 30% of 2,000 at 16 in flight here), so a file
 * whose notification has not arrived is uploaded again, fewer at a time, until every one has.
 */
export async function uploadWithNotifications(env: Emulated, files: string[], prefix: string): Promise<string[]> {
  const keys = files.map((file) => `${prefix}${path.basename(file)}`);
  const bodies = new Map<string, string>();
  let pending = files.map((_, i) => i);
  for (let round = 0, parallel = 16; pending.length > 0; round++, parallel = Math.max(1, parallel >> 1)) {
    if (round === 6) throw new Error(`moto sent no notification for ${pending.length} of ${files.length} uploads after ${round} rounds`);
    // Drained while uploading: moto's queue calls slow down as the queue grows.
    const t0 = Date.now();
    let uploaded = false;
    const collecting = collectNotifications(env, new Set(pending.map((i) => keys[i]!)), bodies, () => uploaded);
    await uploadAll(env, pending.map((i) => [files[i]!, keys[i]!]), parallel).finally(() => (uploaded = true));
    const t1 = Date.now();
    await collecting;
    if (process.env.BENCH_DEBUG) process.stderr.write(`upload round ${round}: ${pending.length} files at ${parallel}, ${t1 - t0} ms; collect ${Date.now() - t1} ms more; have ${bodies.size}\n`);
    pending = pending.filter((i) => !bodies.has(keys[i]!));
  }
  return keys.map((key) => bodies.get(key)!);
}

async function uploadAll(env: Emulated, uploads: [file: string, key: string][], parallel: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < uploads.length) {
      const [file, key] = uploads[next++]!;
      const { size } = await stat(file);
      if (size > 16 * 2 ** 20) {
        await new Upload({
          client: env.clients.s3,
          params: { Bucket: env.inputBucket, Key: key, Body: createReadStream(file), ContentType: 'text/csv' },
          partSize: 64 * 2 ** 20,
          queueSize: 2,
        }).done();
      } else {
        await env.clients.s3.send(new PutObjectCommand({ Bucket: env.inputBucket, Key: key, Body: await readFile(file), ContentType: 'text/csv' }));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, uploads.length) }, worker));
}

/**
 * Drains the capture queue into `bodies` (four receivers) until every wanted key has a notification,
 * or the uploads are done and nothing came for five seconds.
 */
async function collectNotifications(env: Emulated, wanted: Set<string>, bodies: Map<string, string>, uploadsDone: () => boolean): Promise<void> {
  let quietSince = Date.now();
  let missing = [...wanted].filter((key) => !bodies.has(key)).length;
  const receiver = async () => {
    while (missing > 0 && !(uploadsDone() && Date.now() - quietSince > 5_000)) {
      const received = await env.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: env.captureQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) continue;
      quietSince = Date.now();
      for (const message of messages) {
        const parsed = JSON.parse(message.Body ?? '{}') as { Records?: { s3: { object: { key: string } } }[] };
        for (const record of parsed.Records ?? []) {
          const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '));
          if (wanted.has(key) && !bodies.has(key)) missing--;
          if (wanted.has(key)) bodies.set(key, message.Body!);
        }
      }
      await env.clients.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: env.captureQueueUrl,
          Entries: messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle! })),
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: 4 }, receiver));
}

export interface ConsumerSpec {
  /** Stable across bench versions (`results.smallFiles.runs[].id`): what the summary looks up. */
  id: string;
  name: string;
  command: string;
  args: string[];
  /** Extra environment; QUEUE_URL, OUTPUT_BUCKET and the AWS settings are added. */
  env: Record<string, string>;
  /** The consumer prints a JSON line with this `msg` once it is ready to receive. */
  readyMessage: string;
  /** Where the consumer sends its AWS calls, when not straight to the emulator (the keep-alive front). */
  endpoint?: string;
}

/** CPU ms per file by thread, for consumers started with bench/thread-probe. */
export interface ThreadSplit {
  main: number;
  /** Worker threads (the conversion pool). */
  workers: number;
  /** Everything else: V8's GC and compiler helpers, libuv's pool. */
  other: number;
  /** `other` by thread name, for threads still alive at the end. */
  otherByName: Record<string, number>;
}

export interface ConsumerRun {
  id: string;
  name: string;
  files: number;
  wallSeconds: number;
  filesPerMinute: number;
  /** Files per minute up to the 99th-percentile completion: without the emulator's stall (see BENCH_VISIBILITY_TIMEOUT). */
  steadyFilesPerMinute: number;
  /** Conversions beyond one per file: moto's duplicate deliveries. */
  redelivered: number;
  /** Consumer CPU (all threads) from after the warm-up until drained, per measured file. */
  cpuMsPerFile: number;
  /** Consumer CPU while idle, before any file was released (long polls, timers). */
  idleCpuMsPerSecond: number;
  /** Seconds from the release until 99% of the files were done: a long tail after it is a stall. */
  secondsTo99Percent?: number;
  /** Per-file conversion span as the consumer logs it (GET through both PUTs). */
  p50Ms?: number;
  p99Ms?: number;
  peakRssMiB?: number;
  threads?: ThreadSplit;
  outputsFound: number;
  outputsExpected: number;
  /** Per-file outcomes other than `converted` that the consumer logged (serve: duplicate, gone, failed…). */
  outcomes: Record<string, number>;
  failures: string[];
  timedOut: boolean;
  /** serve's event-loop delay over its whole run (its `stopped` log line), in ms. */
  eventLoopDelayMs?: { p50: number; p99: number; max: number };
  /**
   * Calls per measured file by kind (`s3 GET If-Match`, `sqs ReceiveMessage`…), as the keep-alive
   * front counted them; only for runs through the front.
   */
  callsPerFile?: Record<string, number>;
}

/**
 * One consumer, one fresh queue: start it, wait until it is ready and idle, release `warmup`
 * notifications and wait until they are done (module loading, JIT and connection set-up are paid
 * once by a long-running service), take the CPU baseline, feed `bodies` so that about BACKLOG
 * wait in the queue at any time, and stop the clock when the last one is done and the queue empty.
 * Per-file lines are JSON with `msg: "converted"`, `ms` and `key`.
 */
export async function runConsumer(
  env: Emulated,
  spec: ConsumerSpec,
  warmup: string[],
  bodies: string[],
  options: { timeoutMs: number; log: (text: string) => void; onStarted?: (pid: number) => void },
): Promise<ConsumerRun> {
  const { sqs, s3 } = env.clients;
  // Bucket names stop at 63 characters: a short slug of the name and a random part.
  const tag = `${spec.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 24).replace(/-+$/, '')}-${randomBytes(3).toString('hex')}`;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `bench-${tag}-dlq` }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `bench-${tag}`,
      Attributes: {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 }),
        VisibilityTimeout: String(BENCH_VISIBILITY_TIMEOUT),
      },
    }),
  );
  const queueUrl = queue.QueueUrl!;
  const outputBucket = `bench-out-${tag}`;
  await s3.send(new CreateBucketCommand({ Bucket: outputBucket }));

  const child = spawn(spec.command, spec.args, {
    env: {
      ...process.env,
      ...spec.env,
      QUEUE_URL: queueUrl,
      OUTPUT_BUCKET: outputBucket,
      AWS_ENDPOINT_URL: spec.endpoint ?? env.endpoint,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  options.onStarted?.(child.pid!);
  const latencies: number[] = [];
  const finishedAt: number[] = [];
  const failures: string[] = [];
  const outcomes: Record<string, number> = {};
  let done = 0;
  let ready = false;
  let eventLoopDelayMs: ConsumerRun['eventLoopDelayMs'];
  const measuredPrefix = keyPrefixOf(bodies[0]);
  onLines(child.stdout!, (line) => {
    let entry: { msg?: string; ms?: number; key?: string; level?: string | number; err?: unknown; reason?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.msg === spec.readyMessage) ready = true;
    else if (entry.msg === 'stopped') eventLoopDelayMs = (entry as { eventLoopDelayMs?: ConsumerRun['eventLoopDelayMs'] }).eventLoopDelayMs;
    else if (entry.msg === 'converted') {
      done++;
      if (entry.key?.startsWith(measuredPrefix) && typeof entry.ms === 'number') {
        latencies.push(entry.ms);
        finishedAt.push(Date.now());
      }
    } else if (entry.level === 'error' || entry.level === 'warn' || entry.level === 50 || entry.level === 40) {
      if (failures.length < 5) failures.push(line.slice(0, 400));
    }
    // serve's other per-file outcomes (duplicate, gone, failed…), to explain a file without outputs.
    const outcome = (entry as { outcome?: string }).outcome;
    if (outcome && outcome !== 'converted') outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  });
  const stderr: string[] = [];
  const probed: { tid: number; main: boolean }[] = [];
  onLines(child.stderr!, (line) => {
    if (line.startsWith('bench-thread ')) probed.push(JSON.parse(line.slice(13)) as { tid: number; main: boolean });
    else if (stderr.length < 30) stderr.push(line);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));

  const started = Date.now();
  const alive = () => exitCode === undefined;
  const fail = (what: string) => new Error(`${spec.name}: ${what}\n${stderr.join('\n')}\n${failures.join('\n')}`);
  try {
    while (!ready) {
      if (!alive()) throw fail(`exited (${exitCode}) before it was ready`);
      if (Date.now() - started > 120_000) throw fail('not ready after 120 s');
      await sleep(50);
    }
    if (warmup.length > 0) {
      await release(env, queueUrl, warmup);
      while (done < warmup.length || !(await queueEmpty(env, queueUrl))) {
        if (!alive()) throw fail(`exited (${exitCode}) during the warm-up`);
        if (Date.now() - started > 180_000) throw fail('warm-up did not finish in 180 s');
        await sleep(100);
      }
    }
    // Settle, then sample the idle cost (long polls only) before any measured file exists.
    await sleep(1000);
    const idleFrom = processCpuMs(child.pid!)!;
    await sleep(2000);
    const baseline = processCpuMs(child.pid!)!;
    const threadsBefore = threadCpuMs(child.pid!);
    // The front's call counts from here on are the measured files' (and the idle polls').
    if (spec.endpoint) await frontCalls(spec.endpoint);
    const idleCpuMsPerSecond = (baseline - idleFrom) / 2;

    // A steady backlog rather than all N at once: moto's queue calls slow down in proportion to the
    // queue's length (a 2,000-message queue cut the no-op consumer from ~1,500 to ~400 files/min),
    // which would measure moto. BACKLOG notifications stay outstanding, far more than any consumer
    // here holds in flight (30), so none ever waits for work.
    const t0 = Date.now();
    const target = warmup.length + bodies.length;
    let sent = 0;
    let feederError: unknown;
    const feeding = (async () => {
      while (sent < bodies.length && alive()) {
        const outstanding = sent - Math.max(0, done - warmup.length);
        if (outstanding >= BACKLOG) {
          await sleep(10);
          continue;
        }
        const next = bodies.slice(sent, sent + Math.min(BACKLOG - outstanding, 100));
        await release(env, queueUrl, next);
        sent += next.length;
      }
    })().catch((error: unknown) => (feederError = error));
    let timedOut = false;
    let lastCheck = 0;
    let emptySince: number | undefined;
    for (;;) {
      if (feederError) throw feederError;
      if (!alive()) throw fail(`exited (${exitCode}) while draining`);
      if (Date.now() - t0 > options.timeoutMs) {
        timedOut = true;
        break;
      }
      if (sent === bodies.length && Date.now() - lastCheck > 100) {
        lastCheck = Date.now();
        const empty = await queueEmpty(env, queueUrl);
        if (empty && done >= target) break;
        // Nothing left to receive and nothing reappearing for longer than a visibility timeout:
        // the rest will never be converted (counted as missing outputs, not waited for).
        if (!empty) emptySince = undefined;
        else if (emptySince === undefined) emptySince = Date.now();
        else if (Date.now() - emptySince > (BENCH_VISIBILITY_TIMEOUT + 10) * 1000) break;
      }
      await sleep(20);
    }
    const t1 = Date.now();
    const cpu = processCpuMs(child.pid!)!;
    const calls = spec.endpoint ? await frontCalls(spec.endpoint) : undefined;
    await feeding;
    const threadsAfter = threadCpuMs(child.pid!);
    const rss = peakRssMiB(child.pid!);
    const files = done >= target ? bodies.length : Math.max(0, done - warmup.length);
    const wallSeconds = (t1 - t0) / 1000;
    const secondsTo99 = finishedAt.length > 0 ? ((percentile(finishedAt, 99) ?? t0) - t0) / 1000 : undefined;
    let threads: ThreadSplit | undefined;
    if (probed.length > 0) {
      const used = (tid: number) => (threadsAfter.get(tid) ?? 0) - (threadsBefore.get(tid) ?? 0);
      const main = probed.filter((t) => t.main).reduce((sum, t) => sum + used(t.tid), 0);
      const workers = probed.filter((t) => !t.main).reduce((sum, t) => sum + used(t.tid), 0);
      const per = Math.max(1, files);
      const names = threadNames(child.pid!);
      const probedTids = new Set(probed.map((t) => t.tid));
      const otherByName: Record<string, number> = {};
      for (const tid of threadsAfter.keys()) {
        if (probedTids.has(tid)) continue;
        const name = names.get(tid) ?? '?';
        otherByName[name] = (otherByName[name] ?? 0) + used(tid) / per;
      }
      threads = { main: main / per, workers: workers / per, other: (cpu - baseline - main - workers) / per, otherByName };
    }
    await stopChild(child, 'SIGTERM', 30_000);
    // Its last lines (`stopped`, with the event-loop delay) may still be on their way.
    if (!child.stdout!.closed) await new Promise((resolve) => child.stdout!.once('close', resolve));
    const outputsFound = await countObjects(env, outputBucket);
    return {
      id: spec.id,
      name: spec.name,
      files,
      wallSeconds,
      filesPerMinute: (files / wallSeconds) * 60,
      steadyFilesPerMinute:
        finishedAt.length >= 100 && secondsTo99 !== undefined && secondsTo99 > 0 ? ((0.99 * files) / secondsTo99) * 60 : (files / wallSeconds) * 60,
      redelivered: Math.max(0, done - target),
      cpuMsPerFile: (cpu - baseline) / Math.max(1, files),
      idleCpuMsPerSecond,
      secondsTo99Percent: secondsTo99,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      peakRssMiB: rss,
      threads,
      outputsFound,
      outputsExpected: 2 * (warmup.length + bodies.length),
      outcomes,
      failures,
      timedOut,
      ...(eventLoopDelayMs ? { eventLoopDelayMs } : {}),
      ...(calls ? { callsPerFile: Object.fromEntries(Object.entries(calls).map(([kind, n]) => [kind, n / Math.max(1, files)])) } : {}),
    };
  } finally {
    await stopChild(child, 'SIGKILL');
  }
}

/** The keep-alive front's call counts since it was last asked (bench/keepalive-proxy.ts). */
async function frontCalls(endpoint: string): Promise<Record<string, number>> {
  const response = await fetch(`${endpoint}/__bench/calls`);
  return (await response.json()) as Record<string, number>;
}

function keyPrefixOf(body: string | undefined): string {
  if (!body) return '';
  const key = (JSON.parse(body) as { Records: { s3: { object: { key: string } } }[] }).Records[0]!.s3.object.key;
  return key.slice(0, key.lastIndexOf('/') + 1);
}

/**
 * Visibility timeout of the bench's queues (and what the consumers are told to use). moto's
 * ReceiveMessage takes no lock: two receives at once can hand out the same message, and the
 * delete with the older receipt handle is then ignored, so the message sits invisible until its
 * visibility timeout ends and is converted again. A short timeout keeps that emulator stall short;
 * `steadyFilesPerMinute` leaves it out altogether.
 */
export const BENCH_VISIBILITY_TIMEOUT = 20;

/** Notifications kept waiting in a consumer's queue while it drains (see runConsumer). */
const BACKLOG = 200;

/** Sends notification bodies to the queue, ten a call, eight calls at a time. */
async function release(env: Emulated, queueUrl: string, bodies: string[]): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < bodies.length; i += 10) batches.push(bodies.slice(i, i + 10));
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      const result = await env.clients.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((body, i) => ({ Id: String(i), MessageBody: body })) }),
      );
      if (result.Failed?.length) throw new Error(`SendMessageBatch failed: ${JSON.stringify(result.Failed)}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function queueEmpty(env: Emulated, queueUrl: string): Promise<boolean> {
  const { Attributes } = await env.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages ?? 1) === 0 &&
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 1) === 0 &&
    Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0) === 0
  );
}

async function countObjects(env: Emulated, bucket: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await env.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    count += page.KeyCount ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return count;
}
