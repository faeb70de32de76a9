/**
 * Parallel format writing, on vs off: the ~100 MB bench CSV converted to Parquet + Avro (local
 * outputs) with each parser, the two modes run back to back and alternated, each run in a process
 * of its own so its CPU time and peak RSS are its own (all threads included).
 *   node dist/bench/parallel.js [--repeat 3] [--parsers fast-csv,papaparse]
 * `bench/run.ts` can call `parallelSection` instead and put its rows in results.json.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { CsvParserName } from '../src/csv/read.js';
import { registerBuiltinFormats } from '../src/formats/builtin.js';
import { FormatRegistry } from '../src/formats/registry.js';
import { convertObject, DEFAULT_ENGINE_OPTIONS } from '../src/pipeline/convert.js';
import { LocalStore } from '../src/storage/local.js';
import { bigCsv } from './data.js';

interface RunJob {
  file: string;
  parser: CsvParserName;
  parallelFormats: boolean;
}

interface RunResult {
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  rows: number;
  spilled: boolean;
  formatThreads: number;
}

export interface ParallelRow {
  parser: CsvParserName;
  mode: 'parallel' | 'one thread';
  /** Every run's wall seconds, in the order run. */
  runs: number[];
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** Median over the back-to-back pairs of one-thread wall ÷ this mode's wall (drift hits both alike). */
  speedUp: number;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/** One conversion, in this process: prints one JSON line. */
async function child(job: RunJob): Promise<void> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'bench-parallel-'));
  try {
    const store = new LocalStore(out);
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const summary = await convertObject({
      source: { store: new LocalStore(path.dirname(job.file)), key: path.basename(job.file) },
      outputs: [
        { format: 'parquet', store, key: 'out.parquet' },
        { format: 'avro', store, key: 'out.avro' },
      ],
      options: { ...DEFAULT_ENGINE_OPTIONS, parser: job.parser, parallelFormats: job.parallelFormats },
      registry: registerBuiltinFormats(new FormatRegistry()),
    });
    const cpu = process.cpuUsage(cpuBefore);
    const result: RunResult = {
      seconds: (performance.now() - started) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      rows: summary.rows,
      spilled: summary.spilled,
      formatThreads: summary.formatThreads,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

function runChild(job: RunJob): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [THIS_FILE, '--child', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    proc.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as RunResult) : reject(new Error(`bench child ${JSON.stringify(job)} exited ${code}`)),
    );
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Runs both modes `repeat` times per parser, alternating which goes first so drift hits both. */
export async function parallelSection(options: {
  file: string;
  repeat: number;
  parsers?: CsvParserName[];
  log: (text: string) => void;
}): Promise<ParallelRow[]> {
  const rows: ParallelRow[] = [];
  for (const parser of options.parsers ?? ['papaparse', 'fast-csv']) {
    const results = { on: [] as RunResult[], off: [] as RunResult[] };
    for (let i = 0; i < options.repeat; i++) {
      for (const mode of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const result = await runChild({ file: options.file, parser, parallelFormats: mode === 'on' });
        if (!result.spilled || result.formatThreads !== (mode === 'on' ? 1 : 0)) {
          throw new Error(`run ${mode} did not take the expected path: ${JSON.stringify(result)}`);
        }
        const load = os.loadavg()[0]!.toFixed(2);
        options.log(`parallel: ${parser} ${mode} run ${i + 1}: ${result.seconds.toFixed(2)} s wall, ${result.cpuSeconds.toFixed(2)} s CPU (load ${load})`);
        results[mode].push(result);
      }
    }
    for (const mode of ['off', 'on'] as const) {
      const wall = median(results[mode].map((r) => r.seconds));
      rows.push({
        parser,
        mode: mode === 'on' ? 'parallel' : 'one thread',
        runs: results[mode].map((r) => r.seconds),
        wallSeconds: wall,
        cpuSeconds: median(results[mode].map((r) => r.cpuSeconds)),
        peakRssMiB: Math.max(...results[mode].map((r) => r.peakRssMiB)),
        speedUp: median(results.off.map((off, i) => off.seconds / results[mode][i]!.seconds)),
      });
    }
  }
  return rows;
}

export function parallelTable(rows: ParallelRow[]): string {
  const lines = [
    '| parser | formats written on | wall s (median; runs) | CPU s | peak RSS MiB | speed-up |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const runs = row.runs.map((s) => s.toFixed(2)).join(', ');
    lines.push(
      `| ${row.parser} | ${row.mode} | ${row.wallSeconds.toFixed(2)} (${runs}) | ${row.cpuSeconds.toFixed(2)} | ${Math.round(row.peakRssMiB)} | ${row.speedUp.toFixed(2)}× |`,
    );
  }
  return lines.join('\n');
}

async function main(args: string[]): Promise<void> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args[0] === '--child') {
    await child(JSON.parse(args[1]!) as RunJob);
    return;
  }
  const log = (text: string) => process.stderr.write(`[bench] ${text}\n`);
  const file = await bigCsv('engine-100mb.csv', 100e6, log);
  const loadBefore = os.loadavg()[0]!;
  const rows = await parallelSection({
    file,
    repeat: Number(flag('--repeat') ?? 3),
    parsers: flag('--parsers')?.split(',') as CsvParserName[] | undefined,
    log,
  });
  process.stdout.write(`${parallelTable(rows)}\n`);
  process.stdout.write(`${os.cpus().length} cores, load average ${loadBefore.toFixed(2)} before and ${os.loadavg()[0]!.toFixed(2)} after\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === THIS_FILE) await main(process.argv.slice(2));
