/**
 * bench/results.json: the sections of the latest run of each (a partial run replaces only the
 * sections it ran, and every section's `measuredIn` says which run it came from), and a `summary` of stable
 * fields from this run's sections, null for a section that did not run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { DEFAULT_CSV_PARSER } from '../src/csv/read.js';
import { round } from './support.js';

export interface BenchSummary {
  /** serve, keep-alive front, WORKER_THREADS=1, default settings: consumer CPU ms per 20 KB file. */
  serveCpuMsPerFile: number | null;
  /** The no-op consumer making the same SQS and S3 calls: the floor. */
  noopCpuMsPerFile: number | null;
  /** The proposal's worker (awswrangler + fastavro) on the same files. */
  proposalCpuMsPerFile: number | null;
  /** Outputs serve's run above should have written and did not (0 when every file converted). */
  smallFilesOutputsMissing: number | null;
  /** Engine, both formats, default parser and settings, the engine file, ÷ DuckDB threads=1: by wall time… */
  engineVsDuckdb1Wall: number | null;
  /** …and by CPU-seconds. */
  engineVsDuckdb1Cpu: number | null;
  /** The engine alone on the 20 KB files, default parser: CPU ms per file. */
  engineCpuMsPerSmallFile: number | null;
  /** One large file through serve (1 GB; 100 MB in a quick run): MB per second, and peak RSS. */
  largeFileMBps: number | null;
  largeFilePeakRssMiB: number | null;
}

/** Where each section's figures come from: the run that measured them. */
export interface RunStamp {
  mode: 'quick' | 'full';
  /** `--only` sections, or all. */
  only: string[] | 'all';
  commit: unknown;
  srcDirty: unknown;
  date: unknown;
}

interface ConsumerRunLike {
  id?: string;
  name: string;
  cpuMsPerFile: number;
  outputsFound: number;
  outputsExpected: number;
  peakRssMiB?: number;
  wallSeconds: number;
}

/**
 * The small-files figures, from the small-files section: its own `summary` when it gives one
 * (fields serveCpuMsPerFile, noopCpuMsPerFile, proposalCpuMsPerFile, outputsMissing), else the
 * runs found by name, through the keep-alive front when it ran.
 */
function smallFiles(section: unknown): Pick<BenchSummary, 'serveCpuMsPerFile' | 'noopCpuMsPerFile' | 'proposalCpuMsPerFile' | 'smallFilesOutputsMissing'> {
  const none = { serveCpuMsPerFile: null, noopCpuMsPerFile: null, proposalCpuMsPerFile: null, smallFilesOutputsMissing: null };
  if (!section || typeof section !== 'object') return none;
  const own = (section as { summary?: Record<string, number | null> }).summary;
  if (own) {
    return {
      serveCpuMsPerFile: own.serveCpuMsPerFile ?? null,
      noopCpuMsPerFile: own.noopCpuMsPerFile ?? null,
      proposalCpuMsPerFile: own.proposalCpuMsPerFile ?? null,
      smallFilesOutputsMissing: own.outputsMissing ?? null,
    };
  }
  const runs = ((section as { runs?: ConsumerRunLike[] }).runs ?? []).filter((run) => run && typeof run.name === 'string');
  // Runs carry a stable id (bench/run.ts, SMALL_FILE_RUN_IDS): the headline is serve through the keep-alive front.
  const byId = (id: string) => runs.find((run) => run.id === id);
  const serveById = byId('serve-front') ?? byId('serve');
  if (serveById) {
    const front = serveById.id === 'serve-front';
    const missing = runs.filter((run) => run.id?.startsWith('serve')).reduce((n, run) => n + (run.outputsExpected - run.outputsFound), 0);
    return {
      serveCpuMsPerFile: serveById.cpuMsPerFile,
      noopCpuMsPerFile: byId(front ? 'noop-front' : 'noop')?.cpuMsPerFile ?? null,
      proposalCpuMsPerFile: byId(front ? 'proposal-front' : 'proposal')?.cpuMsPerFile ?? null,
      smallFilesOutputsMissing: missing,
    };
  }
  const front = runs.some((run) => run.name.includes('keep-alive'));
  const pick = (test: (name: string) => boolean) => runs.find((run) => test(run.name) && run.name.includes('keep-alive') === front);
  const serve = pick((name) => name.startsWith('serve') && name.includes('WORKER_THREADS=1') && !name.includes('CSV_PARSER'));
  const noop = pick((name) => name.startsWith('no-op'));
  const proposal = pick((name) => name.startsWith('proposal'));
  return {
    serveCpuMsPerFile: serve?.cpuMsPerFile ?? null,
    noopCpuMsPerFile: noop?.cpuMsPerFile ?? null,
    proposalCpuMsPerFile: proposal?.cpuMsPerFile ?? null,
    smallFilesOutputsMissing: serve ? serve.outputsExpected - serve.outputsFound : null,
  };
}

/** The summary of this run: `results` holds only the sections that ran. */
export function summarize(results: Record<string, unknown>): BenchSummary {
  const engine = results.engine as { rows?: { headline?: boolean; vsDuckdb1?: number; vsDuckdb1Cpu?: number }[] } | undefined;
  const headline = engine?.rows?.find((row) => row.headline);
  const small = results.engineSmallFiles as { parser: string; cpuMsPerFile: number }[] | undefined;
  const memory = results.memory as { megabytes: number; run: ConsumerRunLike } | undefined;
  return {
    ...smallFiles(results.smallFiles),
    engineVsDuckdb1Wall: headline?.vsDuckdb1 ?? null,
    engineVsDuckdb1Cpu: headline?.vsDuckdb1Cpu ?? null,
    engineCpuMsPerSmallFile: small?.find((row) => row.parser === DEFAULT_CSV_PARSER)?.cpuMsPerFile ?? null,
    largeFileMBps: memory && memory.run.outputsFound === memory.run.outputsExpected ? memory.megabytes / memory.run.wallSeconds : null,
    largeFilePeakRssMiB: memory?.run.peakRssMiB ?? null,
  };
}

/** Keys of results.json that are not sections. */
const NOT_SECTIONS = new Set(['summary', 'lastRun', 'machine', 'mode', 'table', 'targets', 'seconds']);
/** Sections of earlier versions of the bench, dropped from the file. */
const RETIRED_SECTIONS = new Set(['parallelFormats']);

/**
 * Writes results.json: this run's sections (each stamped with the run), the other sections as the
 * file held them, this run's summary, table and targets.
 */
export async function writeResults(file: string, results: Record<string, unknown>, stamp: RunStamp): Promise<BenchSummary> {
  const previous: Record<string, unknown> = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const summary = summarize(results);
  const merged: Record<string, unknown> = { summary, lastRun: { ...stamp, machine: results.machine, seconds: results.seconds } };
  const oldStamp = (previous.lastRun ?? { mode: previous.mode, only: 'all', ...(previous.machine as object) }) as RunStamp;
  for (const [key, value] of Object.entries(previous)) {
    if (NOT_SECTIONS.has(key) || RETIRED_SECTIONS.has(key)) continue;
    merged[key] = value && typeof value === 'object' && !Array.isArray(value) && 'measuredIn' in value ? value : { measuredIn: pick(oldStamp), ...(Array.isArray(value) ? { rows: value } : (value as object)) };
  }
  for (const [key, value] of Object.entries(results)) {
    if (NOT_SECTIONS.has(key)) continue;
    merged[key] = { measuredIn: stamp, ...(Array.isArray(value) ? { rows: value } : (value as object)) };
  }
  merged.table = results.table;
  merged.targets = results.targets;
  await writeFile(file, `${JSON.stringify(merged, (_key, value) => (typeof value === 'number' ? round(value, 3) : value), 2)}\n`);
  return summary;
}

function pick(stamp: RunStamp): RunStamp {
  return { mode: stamp.mode, only: stamp.only ?? 'all', commit: stamp.commit, srcDirty: stamp.srcDirty, date: stamp.date };
}
