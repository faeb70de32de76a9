/**
 * Memory, with the task definition's own settings (one worker thread with a 384 MiB heap, sixteen
 * files at once, 2 GiB for the task): a wide file (150 columns × 60,000 rows, ~74 MB) converts
 * beside small files that are neither retried nor dead-lettered, and four narrow files of ~40 MB
 * convert beside twelve small ones, the whole process staying under the task's memory.
 *
 * Small files convert on the main thread and share nothing with the large ones; large ones are
 * admitted to the worker thread by size (one at a time here). That the wide file fits a 384 MiB heap
 * at all is the engine's part: batches and row groups bounded by bytes, not rows. A file that cannot
 * fit even alone is charged with its thread's crash: dead-lettered at once, not retried.
 */
import { expect } from 'chai';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { readDeployJson } from '../deploy/deploy-files.js';
import { sharedEmulator } from '../support/emulator.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import { asDeadLetter, createPipeline, drainQueue, inParallel, logsWith, outputKeysFor, putObject, queueDepth, readOutputs, saveLogs, waitFor, type Pipeline } from './harness.js';

/** The environment of task-definition.json, which these tests run the service with. */
function taskDefinition(): { env: Record<string, string>; memoryMiB: number } {
  const task = readDeployJson<{ memory: string; containerDefinitions: { environment: { name: string; value: string }[] }[] }>('task-definition.json');
  // Where it runs (queue, buckets, endpoint, health port, metrics) is this test's; how it runs is the task's.
  const local = new Set(['QUEUE_URL', 'DLQ_URL', 'OUTPUT_BUCKET', 'AWS_REGION', 'HEALTH_PORT', 'METRICS_ENABLED', 'METRICS_NAMESPACE', 'TMP_DIR', 'LOG_LEVEL', 'LOG_PRETTY']);
  const env = Object.fromEntries(task.containerDefinitions[0]!.environment.filter(({ name }) => !local.has(name)).map(({ name, value }) => [name, value]));
  return { env, memoryMiB: Number(task.memory) };
}

/** Streams a CSV of `rows` × `columns` (mixed types) to `file`; returns its size. */
async function writeCsv(file: string, rows: number, columns: number, seed: number): Promise<number> {
  const out = createWriteStream(file);
  const header = Array.from({ length: columns }, (_, c) => `c${c}`).join(',');
  out.write(`${header}\n`);
  let bytes = header.length + 1;
  let lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const cells: string[] = [];
    for (let c = 0; c < columns; c++) {
      const v = (r * 31 + c * 17 + seed) % 100_003;
      // Integers, decimals, words and dates, so every column type is inferred and written.
      cells.push(c % 4 === 0 ? String(v) : c % 4 === 1 ? (v / 7).toFixed(3) : c % 4 === 2 ? `w${v % 977}` : `2024-0${(v % 9) + 1}-1${v % 9}`);
    }
    const line = cells.join(',');
    lines.push(line);
    bytes += line.length + 1;
    if (lines.length === 2_000) {
      if (!out.write(`${lines.join('\n')}\n`)) await once(out, 'drain');
      lines = [];
    }
  }
  if (lines.length > 0) out.write(`${lines.join('\n')}\n`);
  out.end();
  await once(out, 'close');
  return bytes;
}

function smallCsv(i: number): string {
  const lines = ['id,name,amount,day'];
  for (let r = 0; r < 200; r++) lines.push(`${r},n${i}-${r},${r}.25,2024-02-${String((r % 28) + 1).padStart(2, '0')}`);
  return `${lines.join('\n')}\n`;
}

describe('reliability: memory with the task definition’s settings', function () {
  this.timeout(600_000);
  let endpoint: string;
  let clients: AwsClients;
  let dir: string;
  let service: ServiceProcess | undefined;
  const task = taskDefinition();

  before(async () => {
    endpoint = (await sharedEmulator()).endpoint;
    clients = createAwsClients({ endpoint });
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-memory-'));
  });

  afterEach(async () => {
    if (service) console.log(`      service logs: ${await saveLogs(service.logs, `memory-${Date.now()}`)}`);
    await service?.stop('SIGKILL');
    service = undefined;
  });

  after(async () => {
    clients?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** One PUT, so every emulator sends one notification (moto announces a multipart upload twice). */
  async function upload(pipeline: Pipeline, key: string, file: string): Promise<void> {
    await putObject(clients, pipeline.inputBucket, key, await readFile(file));
  }

  /** Runs the service over what is queued until every file is done; returns its peak RSS and totals. */
  async function convertAll(pipeline: Pipeline, files: number, overrides: Record<string, string> = {}): Promise<{ peakMiB: number; totals: Record<string, number>; seconds: number }> {
    const started = Date.now();
    service = await startServiceProcess({
      ...task.env,
      QUEUE_URL: pipeline.queueUrl,
      DLQ_URL: pipeline.dlqUrl,
      OUTPUT_BUCKET: pipeline.outputBucket,
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      METRICS_ENABLED: 'false',
      TMP_DIR: os.tmpdir(),
      WAIT_TIME_SECONDS: '1',
      ...overrides,
    });
    const s = service;
    // A service that dies fails the test at once, with what it wrote to stderr.
    const died = s.exited.then((code) => {
      throw new Error(`the service exited (code ${code}, signal ${s.child.signalCode}) before ${files} files were done; stderr:\n${s.stderr().slice(-4000)}`);
    });
    const totals = await Promise.race([
      died,
      waitFor(
        `${files} files done and the queue empty`,
        async () => {
          const t = (await s.health()).body.totals ?? {};
          const done = (t.FilesConverted ?? 0) + (t.FilesDeadLettered ?? 0);
          const depth = await queueDepth(clients, pipeline.queueUrl);
          return done >= files && depth.visible + depth.inFlight === 0 && t;
        },
        480_000,
        1_000,
      ),
    ]);
    died.catch(() => undefined);
    const status = await readFile(`/proc/${s.child.pid}/status`, 'utf8');
    const peakMiB = Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)![1]) / 1024;
    return { peakMiB, totals, seconds: (Date.now() - started) / 1000 };
  }

  async function expectConverted(pipeline: Pipeline, rowsByKey: Map<string, number>): Promise<void> {
    const keys = [...rowsByKey.keys()].flatMap((key) => Object.values(outputKeysFor(key)));
    const checks = await readOutputs(endpoint, pipeline.outputBucket, keys);
    const expected = new Map([...rowsByKey].flatMap(([key, rows]) => Object.values(outputKeysFor(key)).map((k) => [k, rows] as const)));
    expect(checks.filter((check) => check.error || check.rows !== expected.get(check.key))).to.deep.equal([]);
  }

  function expectNoRetries(totals: Record<string, number>, pipeline: Pipeline): void {
    expect({ retries: totals.TransientRetries ?? 0, failed: totals.FilesFailed ?? 0, deadLettered: totals.FilesDeadLettered ?? 0 }).to.deep.equal({
      retries: 0,
      failed: 0,
      deadLettered: 0,
    });
    void pipeline;
  }

  it('a CSV of 150 columns × 60,000 rows converts beside small files that are neither retried nor dead-lettered', async () => {
    const pipeline = await createPipeline(clients, 'memory-wide', { visibilityTimeout: 120 });
    const wide = path.join(dir, 'wide.csv');
    const bytes = await writeCsv(wide, 60_000, 150, 1);
    await upload(pipeline, 'wide/table.csv', wide);
    const rows = new Map<string, number>([['wide/table.csv', 60_000]]);
    await inParallel(Array.from({ length: 12 }, (_, i) => i), 6, async (i) => {
      await putObject(clients, pipeline.inputBucket, `wide/small-${i}.csv`, smallCsv(i));
      rows.set(`wide/small-${i}.csv`, 200);
    });
    const { peakMiB, totals, seconds } = await convertAll(pipeline, rows.size);
    console.log(`      ${(bytes / 1e6).toFixed(0)} MB wide CSV + 12 small files: ${seconds.toFixed(0)} s, peak RSS ${peakMiB.toFixed(0)} MiB (task memory ${task.memoryMiB} MiB)`);
    expect(await drainQueue(clients, pipeline.dlqUrl, 500), 'dead letters').to.deep.equal([]);
    expectNoRetries(totals, pipeline);
    await expectConverted(pipeline, rows);
    // Each small file converted on its first delivery, once.
    for (let i = 0; i < 12; i++) expect(logsWith(service!.logs, 'converted').filter((line) => line.key === `wide/small-${i}.csv`)).to.have.length(1);
    expect(peakMiB).to.be.below(task.memoryMiB);
  });

  it('4 narrow files of about 40 MB with 12 small ones all convert, peak RSS under the task’s memory', async () => {
    const pipeline = await createPipeline(clients, 'memory-narrow', { visibilityTimeout: 120 });
    const rows = new Map<string, number>();
    const narrow = path.join(dir, 'narrow.csv');
    // ~40 MB each: 8 columns × 640,000 rows; one file on disk, uploaded under four keys.
    const bytes = await writeCsv(narrow, 640_000, 8, 2);
    for (let i = 0; i < 4; i++) {
      await upload(pipeline, `narrow/big-${i}.csv`, narrow);
      rows.set(`narrow/big-${i}.csv`, 640_000);
    }
    await inParallel(Array.from({ length: 12 }, (_, i) => i), 6, async (i) => {
      await putObject(clients, pipeline.inputBucket, `narrow/small-${i}.csv`, smallCsv(i));
      rows.set(`narrow/small-${i}.csv`, 200);
    });
    const { peakMiB, totals, seconds } = await convertAll(pipeline, rows.size);
    console.log(`      4 × ${(bytes / 1e6).toFixed(0)} MB narrow CSVs + 12 small files: ${seconds.toFixed(0)} s, peak RSS ${peakMiB.toFixed(0)} MiB (task memory ${task.memoryMiB} MiB)`);
    expect(await drainQueue(clients, pipeline.dlqUrl, 500), 'dead letters').to.deep.equal([]);
    expectNoRetries(totals, pipeline);
    await expectConverted(pipeline, rows);
    expect(peakMiB).to.be.below(task.memoryMiB);
  });

  it('a file that cannot fit in a worker’s heap even alone is dead-lettered at once as OUT_OF_MEMORY, the files beside it unharmed', async () => {
    const pipeline = await createPipeline(clients, 'memory-oom', { visibilityTimeout: 120 });
    // One 30 MB field: more than a 64 MiB heap can hold however the engine batches rows (it took
    // about 80 MB), under the longest row the default heap reads (MAX_ROW_CHARS, 32 Mi characters).
    // Reaching the heap limit aborted the whole process in 1 run of 4 (nodejs/node#47224), so the
    // reader refuses such a row by the heap's size first.
    const hog = path.join(dir, 'hog.csv');
    const out = createWriteStream(hog);
    out.write('id,blob\n1,');
    for (let i = 0; i < 30; i++) out.write('x'.repeat(1_000_000));
    out.end('\n');
    await once(out, 'close');
    await upload(pipeline, 'oom/hog.csv', hog);
    const rows = new Map<string, number>();
    await inParallel(Array.from({ length: 12 }, (_, i) => i), 6, async (i) => {
      await putObject(clients, pipeline.inputBucket, `oom/small-${i}.csv`, smallCsv(i));
      rows.set(`oom/small-${i}.csv`, 200);
    });
    // Two files too large for the main thread, converted on the worker thread the hog crashes.
    const medium = Array.from({ length: 6_000 }, (_, r) => `${r},m${r},${r}.5,2024-03-0${(r % 9) + 1}`).join('\n');
    for (const name of ['medium-a', 'medium-b']) {
      await putObject(clients, pipeline.inputBucket, `oom/${name}.csv`, `id,name,amount,day\n${medium}\n`);
      rows.set(`oom/${name}.csv`, 6_000);
    }
    const { totals, seconds } = await convertAll(pipeline, rows.size + 1, { WORKER_HEAP_MB: '64' });
    const letters = (await drainQueue(clients, pipeline.dlqUrl, 500)).map(asDeadLetter);
    console.log(`      30 MB field with a 64 MiB worker heap, 12 small and 2 medium files: ${seconds.toFixed(0)} s; dead letters ${JSON.stringify(letters.map((l) => [l.code, l.attributes.attempts]))}`);
    expect(letters.map((l) => ({ keys: l.keys, code: l.code, attempts: l.attributes.attempts }))).to.deep.equal([{ keys: ['oom/hog.csv'], code: 'OUT_OF_MEMORY', attempts: '1' }]);
    // Refused by the reader before the row is held whole: a 64 MiB heap limits rows to about 14 M
    // characters (csv/read.ts, rowCharLimit). A worker that did reach its heap limit would be charged
    // the same way ("did not fit in memory", test/service/pool.test.ts), when Node catches it.
    expect(letters[0]!.reason).to.match(/^s3:\/\/[^ ]+\/oom\/hog\.csv: line 2: a row runs past \d+ characters, more than a thread with a heap of \d+ MiB can convert .*raise WORKER_HEAP_MB .*split the file/);
    expect(totals.TransientRetries ?? 0, 'retries').to.equal(0);
    await expectConverted(pipeline, rows);
  });
});
