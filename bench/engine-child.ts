/**
 * One engine measurement in its own process, so its peak RSS is its own: the product's
 * `convertObject` (as `convert` runs it, outputs discarded), a parser alone (text in, rows out),
 * or DuckDB's CSV→Parquet. Prints one JSON line: seconds, CPU seconds (all threads), rows, bytes,
 * peak RSS.
 *   node dist/bench/engine-child.js '{"kind":"ours","file":"…","parser":"papaparse","formats":["parquet","avro"]}'
 */
import { stat, rm, mkdtemp, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { openCsv, type CsvParserName } from '../src/csv/read.js';
import { loadFormats } from '../src/formats/plugins.js';
import { convertObject, DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../src/pipeline/convert.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectHead, ObjectStore, PendingObject, SourceObject } from '../src/storage/types.js';

export type EngineJob =
  /** `formats: []` parses, infers and builds the typed batches, and writes nothing. */
  | { kind: 'ours'; file: string; parser: CsvParserName; formats: string[]; outDir?: string; options?: Partial<EngineOptions> }
  /** The tokenizer alone through our reader (rows with their lines), or udsv's own (not offered: see README). */
  | { kind: 'parse'; file: string; parser: CsvParserName | 'udsv' }
  | { kind: 'duckdb'; file: string; threads: number }
  /** The 20 KB files of the service bench, from memory, one after another: CPU ms per file. */
  | { kind: 'small'; files: string[]; parser: CsvParserName };

export interface EngineResult {
  seconds: number;
  cpuSeconds: number;
  rows: number;
  bytesIn: number;
  bytesOut: number;
  peakRssMiB: number;
  /** `small` jobs only. */
  files?: number;
  cpuMsPerFile?: number;
}

/** Outputs that only count their bytes: the engine's own cost, no disk or network. */
class DiscardStore implements ObjectStore {
  readonly root = 'discard://';
  async get(): Promise<SourceObject> {
    throw new Error('DiscardStore has nothing to read');
  }
  async head(): Promise<ObjectHead | undefined> {
    return undefined;
  }
  async put(): Promise<PendingObject> {
    let bytes = 0;
    return {
      write: async (chunk: Uint8Array) => {
        bytes += chunk.byteLength;
      },
      commit: async () => bytes,
      abort: async () => {},
    };
  }
  async delete(): Promise<void> {}
}

async function ours(job: Extract<EngineJob, { kind: 'ours' }>): Promise<{ rows: number; bytesOut: number }> {
  const registry = await loadFormats();
  // Outputs are counted and dropped (or written to outDir): the engine's own cost, as `convert` runs it.
  const out: ObjectStore = job.outDir ? new LocalStore(job.outDir) : new DiscardStore();
  const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, parser: job.parser, ...job.options };
  const summary = await convertObject({
    source: { store: new LocalStore(path.dirname(job.file)), key: path.basename(job.file) },
    outputs: job.formats.map((format) => ({ format, store: out, key: `out.${format}` })),
    options,
    registry,
  });
  return { rows: summary.rows, bytesOut: summary.outputs.reduce((sum, output) => sum + output.bytes, 0) };
}

async function parseOnly(job: Extract<EngineJob, { kind: 'parse' }>): Promise<{ rows: number; bytesOut: number }> {
  const { body } = await new LocalStore(path.dirname(job.file)).get(path.basename(job.file));
  let rows = 0;
  if (job.parser === 'udsv') {
    // udsv's streaming API on the same decoded text: the header row sets the column count.
    const { initParser } = createRequire(import.meta.url)('udsv') as {
      initParser(schema: unknown): { chunk(text: string, parse: unknown, each: (row: string[]) => boolean): void; end(): void; stringArrs: unknown };
    };
    let parser: ReturnType<typeof initParser> | undefined;
    const decoder = new TextDecoder();
    for await (const bytes of body) {
      const text = decoder.decode(bytes as Buffer, { stream: true });
      if (!parser) {
        const header = text.slice(0, text.indexOf('\n')).split(',');
        parser = initParser({ skip: 1, col: ',', row: '\n', encl: '"', esc: '"', trim: false, cols: header.map((name) => ({ name, type: 's', repl: {} })) });
      }
      parser.chunk(text, parser.stringArrs, () => (rows++, true));
    }
    parser?.end();
    return { rows, bytesOut: 0 };
  }
  const table = await openCsv(body, { parser: job.parser, encoding: 'utf-8', chunkRows: 1024 });
  for await (const chunk of table.chunks) rows += chunk.rows.length;
  return { rows, bytesOut: 0 };
}

/** Sources held in memory, so only the engine's own CPU is counted. */
class MemoryStore implements ObjectStore {
  readonly root = 'memory://';
  constructor(private readonly objects: Map<string, Buffer>) {}
  async get(key: string): Promise<SourceObject> {
    const bytes = this.objects.get(key)!;
    return { body: Readable.from([bytes]), size: bytes.byteLength };
  }
  async head(): Promise<ObjectHead | undefined> {
    return undefined;
  }
  async put(): Promise<PendingObject> {
    throw new Error('MemoryStore is read-only');
  }
  async delete(): Promise<void> {}
}

async function small(job: Extract<EngineJob, { kind: 'small' }>): Promise<{ rows: number; bytesOut: number; files: number; cpuMsPerFile: number }> {
  const registry = await loadFormats();
  const objects = new Map<string, Buffer>();
  for (const file of job.files) objects.set(path.basename(file), await readFile(file));
  const source = new MemoryStore(objects);
  const out = new DiscardStore();
  let rows = 0;
  let bytesOut = 0;
  const pass = async () => {
    for (const key of objects.keys()) {
      const summary = await convertObject({
        source: { store: source, key },
        outputs: ['parquet', 'avro'].map((format) => ({ format, store: out, key: `out.${format}` })),
        options: { ...DEFAULT_ENGINE_OPTIONS, parser: job.parser },
        registry,
      });
      rows += summary.rows;
      bytesOut += summary.outputs.reduce((sum, output) => sum + output.bytes, 0);
    }
  };
  await pass(); // warm-up: module loading and JIT, paid once by a long-running service
  rows = 0;
  bytesOut = 0;
  const before = process.cpuUsage();
  const passes = 3;
  for (let i = 0; i < passes; i++) await pass();
  const cpu = process.cpuUsage(before);
  const files = objects.size * passes;
  return { rows, bytesOut, files, cpuMsPerFile: (cpu.user + cpu.system) / 1000 / files };
}

async function duckdb(job: Extract<EngineJob, { kind: 'duckdb' }>): Promise<{ rows: number; bytesOut: number }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-duckdb-'));
  const out = path.join(dir, 'out.parquet');
  try {
    const instance = await DuckDBInstance.create(':memory:', { threads: String(job.threads) });
    const connection = await instance.connect();
    const quoted = (text: string) => `'${text.replace(/'/g, "''")}'`;
    const result = await connection.run(
      `COPY (SELECT * FROM read_csv(${quoted(job.file)})) TO ${quoted(out)} (FORMAT parquet, COMPRESSION snappy)`,
    );
    const rows = Number((await result.getRows())[0]?.[0] ?? 0);
    connection.closeSync();
    instance.closeSync();
    return { rows, bytesOut: (await stat(out)).size };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const job = JSON.parse(process.argv[2]!) as EngineJob;
const started = performance.now();
const cpuBefore = process.cpuUsage();
const measured: { rows: number; bytesOut: number; files?: number; cpuMsPerFile?: number } =
  job.kind === 'ours' ? await ours(job) : job.kind === 'parse' ? await parseOnly(job) : job.kind === 'small' ? await small(job) : await duckdb(job);
const cpu = process.cpuUsage(cpuBefore);
const result: EngineResult = {
  seconds: (performance.now() - started) / 1000,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  rows: measured.rows,
  bytesIn: job.kind === 'small' ? 0 : (await stat(job.file)).size,
  bytesOut: measured.bytesOut,
  peakRssMiB: process.resourceUsage().maxRSS / 1024,
  ...(measured.cpuMsPerFile === undefined ? {} : { files: measured.files, cpuMsPerFile: measured.cpuMsPerFile }),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
