/**
 * The engine sections of the bench: the 100 MB file through every parser, the formats apart, the
 * parsers alone, DuckDB and the proposal's pandas + pyarrow + fastavro on the same file; and the
 * engine alone on the service's 20 KB files. Each measurement runs in a process of its own.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CSV_PARSERS, DEFAULT_CSV_PARSER } from '../src/csv/read.js';
import type { EngineJob, EngineResult } from './engine-child.js';
import { BENCH_DIR, ROOT } from './support.js';

export interface EngineRow {
  name: string;
  mbPerSecond: number;
  mbPerCpuSecond: number;
  rowsPerSecond: number;
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  vsDuckdb1?: number;
  /** The same ratio in MB per CPU-second, which a busy machine disturbs less. */
  vsDuckdb1Cpu?: number;
  /** The headline row: both formats, default parser, default settings. */
  headline?: boolean;
}

export interface SmallEngineRow {
  parser: string;
  cpuMsPerFile: number;
}

type Job = EngineJob | { kind: 'proposal'; file: string };

function runChild(job: Job): Promise<EngineResult> {
  const [command, args] =
    job.kind === 'proposal'
      ? [path.join(BENCH_DIR, '.venv', 'bin', 'python'), [path.join(BENCH_DIR, 'proposal_engine.py'), job.file]]
      : [process.execPath, [path.join(ROOT, 'dist', 'bench', 'engine-child.js'), JSON.stringify(job)]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`engine child ${JSON.stringify(job)} exited ${code}`));
      const result = JSON.parse(out.trim().split('\n').pop()!) as EngineResult;
      resolve({ ...result, bytesIn: result.bytesIn ?? 0 });
    });
  });
}

/** The jobs of the engine table, in order; DuckDB threads=1 first (the ratios' base). */
function engineJobs(file: string, quick: boolean): [string, Job, boolean?][] {
  const both = ['parquet', 'avro'];
  const jobs: [string, Job, boolean?][] = [
    ['DuckDB CSV→Parquet, threads=1', { kind: 'duckdb', file, threads: 1 }],
    ['DuckDB CSV→Parquet, threads=2', { kind: 'duckdb', file, threads: 2 }],
  ];
  for (const parser of CSV_PARSERS) {
    const label = parser === DEFAULT_CSV_PARSER ? `${parser} (default)` : parser;
    jobs.push([`ours ${label} → Parquet + Avro`, { kind: 'ours', file, parser, formats: both }, parser === DEFAULT_CSV_PARSER]);
  }
  const parser = DEFAULT_CSV_PARSER;
  jobs.push([`ours ${parser} → Parquet + Avro, formats on the parsing thread`, { kind: 'ours', file, parser, formats: both, options: { formatThreadMinBytes: Number.MAX_SAFE_INTEGER } }]);
  if (!quick) {
    // Where the time goes: the formats apart, the typed batches without a format, the parsers alone.
    jobs.push([`ours ${parser} → Parquet only`, { kind: 'ours', file, parser, formats: ['parquet'] }]);
    jobs.push([`ours ${parser} → Avro only`, { kind: 'ours', file, parser, formats: ['avro'] }]);
    jobs.push([`ours ${parser}, no format (parse, infer, typed batches)`, { kind: 'ours', file, parser, formats: [] }]);
    for (const tokenizer of [...CSV_PARSERS, 'udsv'] as const) {
      const note = tokenizer === 'udsv' ? ' (not offered: see README)' : '';
      jobs.push([`parse only: ${tokenizer}${note}`, { kind: 'parse', file, parser: tokenizer }]);
    }
  }
  jobs.push(["proposal's approach: pandas + pyarrow (snappy) + fastavro (deflate)", { kind: 'proposal', file }]);
  return jobs;
}

export async function engineSection(file: string, megabytes: number, quick: boolean, log: (text: string) => void): Promise<EngineRow[]> {
  const rows: EngineRow[] = [];
  for (const [name, job, headline] of engineJobs(file, quick)) {
    log(`engine: ${name}`);
    const r = await runChild(job);
    rows.push({
      name,
      mbPerSecond: megabytes / r.seconds,
      mbPerCpuSecond: megabytes / r.cpuSeconds,
      rowsPerSecond: r.rows / r.seconds,
      seconds: r.seconds,
      cpuSeconds: r.cpuSeconds,
      peakRssMiB: r.peakRssMiB,
      ...(headline ? { headline } : {}),
    });
  }
  const duck1 = rows[0]!;
  for (const row of rows) {
    row.vsDuckdb1 = row.mbPerSecond / duck1.mbPerSecond;
    row.vsDuckdb1Cpu = row.mbPerCpuSecond / duck1.mbPerCpuSecond;
  }
  return rows;
}

/** The engine alone on the service's 20 KB files, in memory, in one process: its share of a file's CPU. */
export async function smallEngineSection(files: string[], log: (text: string) => void): Promise<SmallEngineRow[]> {
  const rows: SmallEngineRow[] = [];
  for (const parser of CSV_PARSERS) {
    log(`engine: ${files.length} × 20 KB in memory, ${parser}`);
    const r = await runChild({ kind: 'small', files, parser });
    rows.push({ parser, cpuMsPerFile: r.cpuMsPerFile! });
  }
  return rows;
}
