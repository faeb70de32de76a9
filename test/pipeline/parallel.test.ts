import { expect } from 'chai';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createAwsClients } from '../../src/aws.js';
import { classifyFailure, PermanentError, TransientError } from '../../src/errors.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import { registerBuiltinFormats } from '../../src/formats/builtin.js';
import type { FormatPlugin } from '../../src/formats/types.js';
import { convertObject, DEFAULT_ENGINE_OPTIONS, type ConvertRequest, type EngineOptions, type OutputTarget } from '../../src/pipeline/convert.js';
import { fromThreadError, toThreadError } from '../../src/pipeline/parallel.js';
import { LocalStore } from '../../src/storage/local.js';
import { S3Store } from '../../src/storage/s3.js';
import type { ObjectStore, PendingObject } from '../../src/storage/types.js';
import { readAvro, readParquet } from '../formats/readers.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

const registry = registerBuiltinFormats(new FormatRegistry());

/** Small spool and row groups, so a few thousand rows spill and span many row groups and blocks. */
const SPILLING: EngineOptions = { parallelFormats: true, ...DEFAULT_ENGINE_OPTIONS, rowGroupSize: 1000, memorySpoolBytes: 10_000 };

/** Every inferred type, nulls, int64 beyond 2^53, quoted delimiters and newlines, unicode. */
function mixedCsv(rows: number): string {
  const lines = ['id,big,price,active,day,at,note'];
  for (let i = 0; i < rows; i++) {
    const note = i % 7 === 0 ? '' : i % 5 === 0 ? `"line ${i}\nsecond, ""quoted"""` : `naïve ${i} 東京`;
    lines.push(
      [
        i,
        i % 11 === 0 ? '' : 9007199254740993n + BigInt(i),
        i % 13 === 0 ? '' : (i / 8).toString(),
        i % 3 === 0 ? 'TRUE' : 'false',
        `2024-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}`,
        `2024-03-01T10:${String(i % 60).padStart(2, '0')}:00.123+02:00`,
        note,
      ].join(','),
    );
  }
  return lines.join('\n') + '\n';
}

function request(dir: string, key: string, outputs: OutputTarget[], options: Partial<EngineOptions> = {}): ConvertRequest {
  return { source: { store: new LocalStore(dir), key }, outputs, options: { ...SPILLING, ...options }, registry };
}

function pair(out: ObjectStore, stem: string): OutputTarget[] {
  return [
    { format: 'parquet', store: out, key: `${stem}.parquet` },
    { format: 'avro', store: out, key: `${stem}.avro` },
  ];
}

/** Threads of this process, as the kernel counts them. */
function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

describe('parallel format writing: large files write each extra format on its own thread', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-parallel-'));
    await writeFile(path.join(dir, 'mixed.csv'), mixedCsv(12_000));
  });

  it('a spilled file written on threads has the same content as one written on one thread', async () => {
    const single = await convertObject(request(dir, 'mixed.csv', pair(new LocalStore(path.join(dir, 'single')), 'mixed'), { parallelFormats: false }));
    const parallel = await convertObject(request(dir, 'mixed.csv', pair(new LocalStore(path.join(dir, 'parallel')), 'mixed')));
    expect(single).to.include({ spilled: true, formatThreads: 0, rows: 12_000 });
    expect(parallel).to.include({ spilled: true, formatThreads: 1, rows: 12_000 });
    expect(parallel.columns).to.deep.equal(single.columns);
    expect(parallel.outputs.map((output) => output.bytes)).to.deep.equal(single.outputs.map((output) => output.bytes));

    const parquet = (name: string) => readFile(path.join(dir, name, 'mixed.parquet'));
    expect((await parquet('parallel')).equals(await parquet('single'))).to.equal(true);
    // Avro files differ only in their random sync marker: compare what a reader decodes.
    const [avroSingle, avroParallel] = await Promise.all([readAvro(path.join(dir, 'single/mixed.avro')), readAvro(path.join(dir, 'parallel/mixed.avro'))]);
    expect(avroParallel).to.deep.equal(avroSingle);
    expect(avroParallel.rows).to.equal(12_000);
    expect(avroParallel.blocks).to.be.greaterThan(1);
    const back = await readParquet(path.join(dir, 'parallel/mixed.parquet'));
    expect(back.rowGroups).to.equal(12);
    expect(back.columns).to.deep.equal(avroParallel.columns);
    expect(await readdir(path.join(dir, 'parallel'))).to.have.members(['mixed.parquet', 'mixed.avro']);
  });

  it('every output after the first gets a thread, whichever format it is', async () => {
    const out = new LocalStore(path.join(dir, 'out'));
    const summary = await convertObject(
      request(dir, 'mixed.csv', [
        { format: 'avro', store: out, key: 'a.avro' },
        { format: 'parquet', store: out, key: 'b.parquet' },
        { format: 'avro', store: out, key: 'c.avro' },
      ]),
    );
    expect(summary.formatThreads).to.equal(2);
    expect((await readdir(path.join(dir, 'out'))).sort()).to.deep.equal(['a.avro', 'b.parquet', 'c.avro']);
    const [a, c] = await Promise.all([readAvro(path.join(dir, 'out/a.avro')), readAvro(path.join(dir, 'out/c.avro'))]);
    expect(c).to.deep.equal(a);
  });

  it('stays on one thread when it would not pay or cannot work', async () => {
    const out = new LocalStore(path.join(dir, 'out'));
    const inMemory = await convertObject(request(dir, 'mixed.csv', pair(out, 'memory'), { memorySpoolBytes: 64 * 1024 * 1024 }));
    expect(inMemory).to.include({ spilled: false, formatThreads: 0 });
    const oneOutput = await convertObject(request(dir, 'mixed.csv', [{ format: 'avro', store: out, key: 'one.avro' }]));
    expect(oneOutput).to.include({ spilled: true, formatThreads: 0 });

    // A plugin registered at run time has no module a thread could load; a store without
    // `describe` cannot be reopened elsewhere. Both stay on the calling thread.
    const lines: FormatPlugin = {
      name: 'lines',
      extension: 'txt',
      contentType: 'text/plain',
      compressions: ['none'],
      createWriter: (_schema, sink) => ({
        write: (batch) => sink.write(new TextEncoder().encode(`${batch.rowCount}\n`)),
        finish: async () => undefined,
      }),
    };
    const custom = registerBuiltinFormats(new FormatRegistry()).register(lines);
    const opaque: ObjectStore = {
      root: out.root,
      get: (key) => out.get(key),
      head: (key) => out.head(key),
      put: (key, options) => out.put(key, options),
      delete: (key) => out.delete(key),
    };
    const mixed = await convertObject({
      ...request(dir, 'mixed.csv', [
        { format: 'parquet', store: out, key: 'm.parquet' },
        { format: 'lines', store: out, key: 'm.txt' },
        { format: 'avro', store: opaque, key: 'm.avro' },
        { format: 'avro', store: out, key: 'm2.avro' },
      ]),
      registry: custom,
    });
    expect(mixed.formatThreads).to.equal(1);
    expect((await readFile(path.join(dir, 'out/m.txt'), 'utf8')).split('\n').filter(Boolean)).to.have.length(12);
  });

  it('a failure in a thread publishes nothing and arrives with its name, code and message', async () => {
    const out = new LocalStore(path.join(dir, 'out'));
    // An unknown codec is refused only when the thread creates its writer.
    const codec = await convertObject(request(dir, 'mixed.csv', pair(out, 'codec'), { formatOptions: { avro: { compression: 'lz4' } } })).catch((e: unknown) => e);
    expect((codec as Error).message).to.match(/avro: unsupported compression "lz4"/);
    expect(await readdir(path.join(dir, 'out')).catch(() => [])).to.deep.equal([]);

    // The thread's output directory is a file: the same error as on one thread, code included.
    await writeFile(path.join(dir, 'blocker'), 'not a directory');
    const blocked = (parallelFormats: boolean) =>
      convertObject(
        request(
          dir,
          'mixed.csv',
          [
            { format: 'parquet', store: out, key: 'blocked.parquet' },
            { format: 'avro', store: new LocalStore(path.join(dir, 'blocker', 'sub')), key: 'blocked.avro' },
          ],
          { parallelFormats },
        ),
      ).then(
        () => expect.fail('the conversion should have failed'),
        (e: unknown) => e as NodeJS.ErrnoException,
      );
    const [onOne, onThread] = [await blocked(false), await blocked(true)];
    expect(onThread.code).to.be.a('string').and.equal(onOne.code);
    expect({ name: onThread.name, message: onThread.message }).to.deep.equal({ name: onOne.name, message: onOne.message });
    expect(classifyFailure(onThread)).to.deep.equal(classifyFailure(onOne));
    expect(await readdir(path.join(dir, 'out'))).to.deep.equal([]);

    // A value that does not fit a pinned type stays a PermanentError with its code.
    const pinnedTypes = new Map([['note', 'int64' as const]]);
    const violation = await convertObject(request(dir, 'mixed.csv', pair(out, 'pinned'), { pinnedTypes })).catch((e: unknown) => e);
    expect(violation).to.be.instanceOf(PermanentError);
    expect((violation as PermanentError).code).to.equal('SCHEMA_VIOLATION');
    expect(await readdir(path.join(dir, 'out'))).to.deep.equal([]);
  });

  it('when the calling thread fails, the thread discards its finished output', async () => {
    const out = new LocalStore(path.join(dir, 'out'));
    const refusing: ObjectStore = {
      root: 'refusing://',
      get: () => Promise.reject(new Error('unused')),
      head: () => Promise.resolve(undefined),
      delete: () => Promise.resolve(),
      async put(): Promise<PendingObject> {
        return { write: async () => undefined, commit: () => Promise.reject(new Error('upload refused')), abort: async () => undefined };
      },
    };
    const error = await convertObject(
      request(dir, 'mixed.csv', [
        { format: 'parquet', store: refusing, key: 'x.parquet' },
        { format: 'avro', store: out, key: 'x.avro' },
      ]),
    ).catch((e: unknown) => e);
    expect((error as Error).message).to.equal('upload refused');
    expect(await readdir(path.join(dir, 'out'))).to.deep.equal([]);
  });

  it('an abort stops the threads and leaves no output or temporary file', async () => {
    const out = new LocalStore(path.join(dir, 'out'));
    await convertObject(request(dir, 'mixed.csv', pair(new LocalStore(path.join(dir, 'warm')), 'warm')));
    const threadsBefore = osThreads();
    const controller = new AbortController();
    let threadsDuring = 0;
    // The first format's first write happens after every thread has started: abort right there.
    const aborting: ObjectStore = {
      root: out.root,
      get: (key) => out.get(key),
      head: (key) => out.head(key),
      delete: (key) => out.delete(key),
      async put(key, options) {
        const sink = await out.put(key, options);
        return {
          write: async (chunk) => {
            threadsDuring = osThreads();
            controller.abort();
            await sink.write(chunk);
          },
          commit: () => sink.commit(),
          abort: () => sink.abort(),
        };
      },
    };
    const error = await convertObject({
      ...request(dir, 'mixed.csv', [
        { format: 'parquet', store: aborting, key: 'y.parquet' },
        { format: 'avro', store: out, key: 'y.avro' },
      ]),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect((error as Error).name).to.equal('AbortError');
    expect(threadsDuring).to.be.greaterThan(threadsBefore);
    expect(osThreads()).to.equal(threadsBefore);
    expect(await readdir(path.join(dir, 'out')).catch(() => [])).to.deep.equal([]);
  });

  it('errors keep their class, code and classification across the thread boundary', () => {
    const cross = (error: unknown) => fromThreadError(structuredClone(toThreadError(error)));
    const permanent = cross(new PermanentError('RAGGED_ROW', 'line 3 has 1 field, the header has 2'));
    expect(permanent).to.be.instanceOf(PermanentError);
    expect(permanent).to.include({ code: 'RAGGED_ROW', message: 'line 3 has 1 field, the header has 2' });
    expect(cross(new TransientError('NETWORK', 'reset'))).to.be.instanceOf(TransientError).and.include({ code: 'NETWORK' });
    const throttled = Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    expect(classifyFailure(cross(throttled))).to.deep.equal(classifyFailure(throttled));
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyFailure(cross(reset))).to.deep.equal({ kind: 'transient', code: 'NETWORK', message: 'socket hang up' });
  });

  it('writes to S3 from the thread through the endpoint the store was created with', async function () {
    this.timeout(180_000);
    const emulator = await sharedEmulator();
    const clients = createAwsClients({ endpoint: emulator.endpoint });
    try {
      const bucket = uniqueName('parallel-out');
      await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const out = new S3Store(clients.s3, bucket);
      expect(await out.describe()).to.include({ kind: 's3', bucket, endpoint: new URL(emulator.endpoint).href });
      const summary = await convertObject({ ...request(dir, 'mixed.csv', pair(out, 'p/mixed')), metadata: { origin: 'test' } });
      expect(summary.formatThreads).to.equal(1);
      const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect((listed.Contents ?? []).map((object) => object.Key).sort()).to.deep.equal(['p/mixed.avro', 'p/mixed.parquet']);
      const avro = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'p/mixed.avro' }));
      expect(avro.Metadata).to.include({ origin: 'test' });
      await writeFile(path.join(dir, 'from-s3.avro'), await avro.Body!.transformToByteArray());
      expect((await readAvro(path.join(dir, 'from-s3.avro'))).rows).to.equal(12_000);

      // A failing thread on S3: the output the calling thread wrote is not left behind either.
      const failed = await convertObject(request(dir, 'mixed.csv', pair(out, 'q/mixed'), { formatOptions: { avro: { compression: 'lz4' } } })).catch((e: unknown) => e);
      expect((failed as Error).message).to.match(/unsupported compression/);
      const after = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'q/' }));
      expect(after.Contents ?? []).to.deep.equal([]);
    } finally {
      clients.destroy();
    }
  });
});
