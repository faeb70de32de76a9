/**
 * `npm run bench [-- --quick] [-- --only engine,parallel,small,memory] [-- --consumers=serve-front,noop-front] [-- --no-keep-alive] [-- --profile[=noop]]`: runs us and the
 * alternatives side by side in one go, prints a table and writes bench/results.json. Starts
 * everything it needs (Python envs, moto server, consumers) and generates its data into bench/data/.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bigCsv, smallCsvs } from './data.js';
import { engineSection, smallEngineSection, type EngineRow, type SmallEngineRow } from './engine.js';
import { writeResults } from './summary.js';
import { BENCH_VISIBILITY_TIMEOUT, createInputSide, runConsumer, uploadWithNotifications, type ConsumerRun, type ConsumerSpec, type Emulated } from './e2e.js';
import { SERVICE_QUESTIONS, summarizeDir, type ThreadSummary } from './cpuprofile.js';
import { BENCH_DIR, CLI, DATA_DIR, ROOT, machineInfo, peakRssMiB, round, startMoto, stopChild, useFakeCredentials, type Moto } from './support.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profileArg = args.find((arg) => arg === '--profile' || arg.startsWith('--profile='));
const profile = profileArg !== undefined;
/** `--profile=noop` profiles the no-op consumer instead of serve. */
const profileTarget = profileArg?.split('=')[1] ?? 'serve';
const keepAlive = !args.includes('--no-keep-alive');
const onlyArg = args.find((arg) => arg.startsWith('--only'));
const only = onlyArg ? new Set((onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(',')) : undefined;
const filesArg = args.find((arg) => arg.startsWith('--files='));
const consumersArg = args.find((arg) => arg.startsWith('--consumers='))?.split('=')[1]!.split(',');
const wants = (section: string) => !only || only.has(section);

/** Fargate us-east-1 Linux/x86 on-demand, and the task shape the proposal's slide 8 names (2 vCPU, 4 GB). */
const FARGATE = { vcpuHour: 0.04048, gbHour: 0.004445, gbPerVcpu: 2 };
const PROPOSAL_CLAIM_PER_MILLION = 75;

// The memory section measures its target's own case, 1 GB, in a quick run too: a 100 MB file
// measured 19.3 MB/s where 1 GB ran at 27.1 on the same day (a file's fixed costs weigh more).
const SIZES = quick
  ? { engineBytes: 25e6, engineName: 'engine-25mb.csv', smallFiles: 300, warmup: 20, memoryBytes: 1024 ** 3, memoryName: 'big-1gib.csv' }
  : { engineBytes: 100e6, engineName: 'engine-100mb.csv', smallFiles: 2000, warmup: 30, memoryBytes: 1024 ** 3, memoryName: 'big-1gib.csv' };
if (filesArg) SIZES.smallFiles = Number(filesArg.split('=')[1]);
const SMALL_FILE_BYTES = 20 * 1024;

const log = (text: string) => process.stderr.write(`[bench] ${text}\n`);
const results: Record<string, unknown> = { mode: quick ? 'quick' : 'full', machine: machineInfo() };

// ---- set-up ------------------------------------------------------------------------------------

function ensurePythonEnvs(): void {
  log('python: tests venv (moto server) and bench/.venv (awswrangler, fastavro)');
  execFileSync('bash', [path.join(ROOT, '.ci', 'python-venv.sh')], { stdio: 'inherit' });
  const venv = path.join(BENCH_DIR, '.venv');
  const requirements = path.join(BENCH_DIR, 'requirements.txt');
  const want = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const stamp = path.join(venv, '.requirements.sha');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) return;
  // A venv of its own: awswrangler caps pyarrow below the version the tests pin in .venv.
  execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', '-r', requirements], { stdio: 'inherit' });
  execFileSync('bash', ['-c', `echo ${want} > '${stamp}'`]);
}

// ---- 1. engine: bench/engine.ts --------------------------------------------------------------------

// ---- 2–5. service ---------------------------------------------------------------------------------

/** See BENCH_VISIBILITY_TIMEOUT; the proposal's worker takes the queue's own (the same). */
const SHORT_VISIBILITY = { VISIBILITY_TIMEOUT: String(BENCH_VISIBILITY_TIMEOUT), HEARTBEAT_INTERVAL: '5' };

const PROBE = ['--import', path.join(ROOT, 'dist', 'bench', 'thread-probe.js')];

/**
 * serve as ECS runs it. `threads` undefined leaves WORKER_THREADS at its default (the cores);
 * the task definition sets 1.
 */
function serveSpec(id: string, options: { threads?: number; nodeArgs?: string[]; endpoint?: string; name?: string; parser?: 'papaparse' } = {}): ConsumerSpec {
  const threads = options.threads === undefined ? 'default WORKER_THREADS' : `WORKER_THREADS=${options.threads}`;
  return {
    id,
    name: options.name ?? `serve (ours), ${threads}${options.parser ? `, CSV_PARSER=${options.parser}` : ''}${options.endpoint ? ', keep-alive front' : ''}`,
    command: process.execPath,
    args: [...PROBE, ...(options.nodeArgs ?? []), CLI, 'serve'],
    // info: the `converted` lines carry each file's time (and it is the production default).
    env: {
      ...SHORT_VISIBILITY,
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
      HEALTH_PORT: '0',
      WAIT_TIME_SECONDS: '1',
      METRICS_ENABLED: 'true',
      ...(options.threads === undefined ? {} : { WORKER_THREADS: String(options.threads) }),
      ...(options.parser ? { CSV_PARSER: options.parser } : {}),
    },
    readyMessage: 'serving',
    endpoint: options.endpoint,
  };
}

function noopSpec(id: string, endpoint?: string, nodeArgs: string[] = []): ConsumerSpec {
  return {
    id,
    name: `no-op consumer (same SQS + S3 calls)${endpoint ? ', keep-alive front' : ''}`,
    command: process.execPath,
    args: [...PROBE, ...nodeArgs, path.join(ROOT, 'dist', 'bench', 'noop-consumer.js')],
    env: { ...SHORT_VISIBILITY, WAIT_TIME_SECONDS: '1' },
    readyMessage: 'serving',
    endpoint,
  };
}

function proposalSpec(id: string, endpoint?: string): ConsumerSpec {
  return {
    id,
    name: `proposal (awswrangler + fastavro, 20 threads)${endpoint ? ', keep-alive front' : ''}`,
    command: path.join(BENCH_DIR, '.venv', 'bin', 'python'),
    args: [path.join(BENCH_DIR, 'proposal_worker.py')],
    env: { WAIT_TIME_SECONDS: '1', PYTHONUNBUFFERED: '1' },
    readyMessage: 'serving',
    endpoint,
  };
}

/** The keep-alive front for moto (bench/keepalive-proxy.ts), in its own process. */
async function startKeepAliveFront(motoEndpoint: string): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'keepalive-proxy.js'), motoEndpoint], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').once('data', (line: string) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`keep-alive front exited ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

/**
 * The small-files runs, by id (`results.smallFiles.runs[].id`; `--consumers=a,b` runs only those).
 * Through the keep-alive front is the figure a deployment sees (connections reused, as with real S3
 * and SQS); `serve-front` is serve with its default settings there, the headline.
 */
const SMALL_FILE_RUN_IDS = ['noop', 'serve-1', 'serve', 'proposal', 'noop-front', 'serve-front', 'serve-1-front', 'serve-papaparse-front', 'proposal-front'] as const;

async function smallFilesSection(env: Emulated): Promise<ConsumerRun[]> {
  const files = await smallCsvs('small-20k', SIZES.smallFiles, SMALL_FILE_BYTES);
  const warm = await smallCsvs('warm-20k', SIZES.warmup, SMALL_FILE_BYTES);
  log(`small files: uploading ${files.length} + ${warm.length} warm-up files of 20 KB (S3 notifies a capture queue)`);
  const bodies = await uploadWithNotifications(env, files, 'small/');
  const warmBodies = await uploadWithNotifications(env, warm, 'warm/');
  // moto closes every connection, real S3 and SQS do not: the front keeps them (and counts the calls).
  const front = keepAlive ? await startKeepAliveFront(env.endpoint) : undefined;
  const frontFiles = bodies.slice(0, quick ? 300 : 1000);
  const all: [ConsumerSpec, string[]][] = [
    [noopSpec('noop'), bodies],
    [serveSpec('serve-1', { threads: 1 }), bodies],
    [serveSpec('serve'), bodies],
    [proposalSpec('proposal'), bodies],
  ];
  if (front) {
    all.push(
      [noopSpec('noop-front', front.endpoint), frontFiles],
      [serveSpec('serve-front', { endpoint: front.endpoint }), frontFiles],
      [serveSpec('serve-1-front', { threads: 1, endpoint: front.endpoint }), frontFiles],
      [serveSpec('serve-papaparse-front', { endpoint: front.endpoint, parser: 'papaparse' }), frontFiles],
      [proposalSpec('proposal-front', front.endpoint), frontFiles],
    );
  }
  const plan = consumersArg ? all.filter(([spec]) => consumersArg.includes(spec.id)) : all;
  const runs: ConsumerRun[] = [];
  try {
    for (const [spec, files] of plan) {
      log(`small files: ${spec.name} (${files.length} files)`);
      runs.push(await runConsumer(env, spec, warmBodies, files, { timeoutMs: Math.max(180_000, files.length * 400), log }));
      const r = runs.at(-1)!;
      const split = r.threads ? ` (main ${r.threads.main.toFixed(2)}, workers ${r.threads.workers.toFixed(2)}, other ${r.threads.other.toFixed(2)})` : '';
      log(`  ${r.files} files in ${r.wallSeconds.toFixed(1)} s, ${r.cpuMsPerFile.toFixed(2)} CPU ms/file${split}, outputs ${r.outputsFound}/${r.outputsExpected}${r.eventLoopDelayMs ? `, event-loop delay p99 ${r.eventLoopDelayMs.p99} ms` : ''}`);
    }
  } finally {
    await front?.stop();
  }
  results.smallFiles = { files: files.length, warmupFiles: warm.length, fileBytes: SMALL_FILE_BYTES, runIds: SMALL_FILE_RUN_IDS, runs };
  return runs;
}

async function memorySection(env: Emulated): Promise<ConsumerRun> {
  const file = await bigCsv(SIZES.memoryName, SIZES.memoryBytes, log);
  log(`memory: uploading ${path.basename(file)} (${Math.round(SIZES.memoryBytes / 1e6)} MB)`);
  const [body] = await uploadWithNotifications(env, [file], 'big/');
  log('memory: serve converts it (WORKER_THREADS=1)');
  let pid = 0;
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, peakRssMiB(pid) ?? 0)), 500);
  const run = await runConsumer(env, serveSpec('memory', { threads: 1, name: 'serve, one large file' }), [], [body!], {
    timeoutMs: 30 * 60_000,
    log,
    onStarted: (started) => (pid = started),
  });
  clearInterval(timer);
  run.peakRssMiB = Math.max(run.peakRssMiB ?? 0, peak);
  results.memory = { file: path.relative(ROOT, file), megabytes: Math.round(SIZES.memoryBytes / 1e6), run };
  return run;
}

async function profileSection(env: Emulated): Promise<ThreadSummary[]> {
  const files = await smallCsvs('small-20k', SIZES.smallFiles, SMALL_FILE_BYTES);
  const warm = await smallCsvs('warm-20k', SIZES.warmup, SMALL_FILE_BYTES);
  const bodies = await uploadWithNotifications(env, files, 'small/');
  const warmBodies = await uploadWithNotifications(env, warm, 'warm/');
  const dir = path.join(DATA_DIR, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
  await mkdir(dir, { recursive: true });
  log(`profile: serve under --cpu-prof (one profile per thread) into ${path.relative(ROOT, dir)}`);
  // Through the keep-alive front, as the headline figure: connections reused.
  const front = keepAlive ? await startKeepAliveFront(env.endpoint) : undefined;
  const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', dir];
  const spec =
    profileTarget === 'noop'
      ? noopSpec('profile', front?.endpoint, nodeArgs)
      : serveSpec('profile', { nodeArgs, name: 'serve under --cpu-prof', endpoint: front?.endpoint });
  const run = await runConsumer(
    env,
    spec,
    warmBodies,
    bodies,
    { timeoutMs: 600_000, log },
  ).finally(() => front?.stop());
  log(`  ${run.files} files, ${run.cpuMsPerFile.toFixed(2)} CPU ms/file (profiling inflates this)`);
  const summaries = await summarizeDir(dir, SERVICE_QUESTIONS);
  results.profile = {
    dir: path.relative(ROOT, dir),
    run,
    threads: summaries.map((s) => ({
      file: s.file,
      busyMs: round(s.busyMs, 0),
      busyMsPerFile: round(s.busyMs / (bodies.length + warmBodies.length), 2),
      topModules: s.byModule.slice(0, 12).map(([name, ms]) => [name, round(ms, 0)]),
      topFunctions: s.byFunction.slice(0, 20).map(([name, ms]) => [name, round(ms, 0)]),
      inclusive: Object.fromEntries(Object.entries(s.inclusive).map(([name, ms]) => [name, round(ms, 0)])),
    })),
  };
  return summaries;
}

// ---- report ----------------------------------------------------------------------------------------

function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const text = rows.map((row) => row.map((cell) => (cell === undefined ? '–' : String(cell))));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|')}|`, ...text.map(line)].join('\n');
}

const fmt = (value: number | undefined, digits = 1) => (value === undefined || !Number.isFinite(value) ? undefined : value.toFixed(digits));
const costPerMillion = (cpuMs: number) => ((cpuMs * 1e6) / 3.6e6) * (FARGATE.vcpuHour + FARGATE.gbPerVcpu * FARGATE.gbHour);

/** Consumer CPU over a vCPU, as files per minute: what one vCPU can take when CPU is the bound. */
const filesPerMinutePerVcpu = (cpuMsPerFile: number) => 60_000 / cpuMsPerFile;
const PROPOSAL_CLAIM_FILES_PER_MINUTE = 1_000;

function smallFilesReport(small: ConsumerRun[], smallEngine: SmallEngineRow[] | undefined, targets: { target: string; measured: string; met: string }[]): string[] {
  const out: string[] = [];
  const byId = (id: string) => small.find((r) => r.id === id);
  const proposal = byId('proposal-front') ?? byId('proposal');
  out.push(`\nSmall files end to end: ${SIZES.smallFiles} × 20 KB CSV (${quick ? 300 : 1000} through the keep-alive front), after ${SIZES.warmup} warm-up files; moto server on the same machine; each consumer on a fresh queue, back to back`);
  out.push(
    table(
      ['consumer', 'files', 'files/min', 'CPU ms/file', 'main / workers / GC+other', 'p50 ms', 'p99 ms', 'loop delay p99 ms', 'peak RSS MiB', 'outputs', 'files/min per vCPU (CPU-bound)', '$/M files', 'CPU ÷ proposal'],
      small.map((r) => [
        r.name,
        r.files,
        Math.round(r.steadyFilesPerMinute),
        fmt(r.cpuMsPerFile, 2),
        r.threads ? `${fmt(r.threads.main, 1)} / ${fmt(r.threads.workers, 1)} / ${fmt(r.threads.other, 1)}` : undefined,
        r.p50Ms,
        r.p99Ms,
        r.eventLoopDelayMs?.p99,
        r.peakRssMiB === undefined ? undefined : Math.round(r.peakRssMiB),
        `${r.outputsFound}/${r.outputsExpected}${r.timedOut ? ' TIMEOUT' : ''}${Object.keys(r.outcomes).length ? ` ${Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}` : ''}`,
        Math.round(filesPerMinutePerVcpu(r.cpuMsPerFile)),
        fmt(costPerMillion(r.cpuMsPerFile), 3),
        proposal && proposal.id.endsWith('front') === r.id.endsWith('front') ? fmt(r.cpuMsPerFile / proposal.cpuMsPerFile, 2) : undefined,
      ]),
    ),
  );
  out.push(
    'files/min: measured, up to the 99th-percentile completion (moto, one Python process on the same cores, bounds it; it sometimes hands one message to two receives and ignores the first delete, so that message waits out its 20 s visibility timeout; wall-clock rates are in results.json). ' +
      'CPU ms/file: the consumer process (all threads, /proc) from after its warm-up to the drained queue, ÷ files; split by thread with bench/thread-probe. p50/p99: per-file time as each consumer logs it (GET to both outputs written). ' +
      'Loop delay: serve’s event-loop delay over its run (perf_hooks). Files/min per vCPU: 60,000 ÷ CPU ms/file, the capacity when CPU is the bound. Outputs include the warm-up files.',
  );
  const callLines = small.filter((r) => r.callsPerFile).map((r) => `${r.name}: ${Object.entries(r.callsPerFile!).sort().map(([kind, n]) => `${kind} ${n.toFixed(2)}`).join(', ')}`);
  if (callLines.length > 0) out.push(`Calls per file, counted by the keep-alive front:\n${callLines.map((line) => `- ${line}`).join('\n')}`);
  const stalled = small.filter((r) => r.secondsTo99Percent !== undefined && r.wallSeconds - r.secondsTo99Percent > Math.max(10, 0.25 * r.secondsTo99Percent));
  if (stalled.length > 0) out.push(`Emulator stalls (99% done → queue empty): ${stalled.map((r) => `${r.name} ${fmt(r.secondsTo99Percent)} s → ${fmt(r.wallSeconds)} s, ${r.redelivered} redelivered`).join('; ')}`);
  if (smallEngine) out.push(`Engine alone on the same 20 KB files (in memory, one thread, no I/O): ${smallEngine.map((r) => `${r.parser} ${fmt(r.cpuMsPerFile, 2)} CPU ms/file`).join(', ')}.`);
  out.push(
    `Fargate: $${FARGATE.vcpuHour}/vCPU-h + $${FARGATE.gbHour}/GB-h × ${FARGATE.gbPerVcpu} GB per vCPU (a 2 vCPU / 4 GB task), CPU fully used; cost = CPU-ms/file × 10⁶ / 3.6·10⁶ × $${(FARGATE.vcpuHour + FARGATE.gbPerVcpu * FARGATE.gbHour).toFixed(5)}. The proposal claims $${PROPOSAL_CLAIM_PER_MILLION}/M.`,
  );
  const serve = byId('serve-front');
  const noop = byId('noop-front');
  if (serve) {
    const perVcpu = filesPerMinutePerVcpu(serve.cpuMsPerFile);
    targets.push({
      target: '≤ 5.0 consumer CPU ms per 20 KB file (serve, default settings, keep-alive front)',
      measured: `${fmt(serve.cpuMsPerFile, 2)}${noop ? ` (the no-op consumer making the same calls: ${fmt(noop.cpuMsPerFile, 2)})` : ''}`,
      met: serve.cpuMsPerFile <= 5 ? 'yes' : 'NO',
    });
    if (proposal) {
      targets.push({
        target: "≤ 0.10× the proposal's CPU per file",
        measured: `${fmt(serve.cpuMsPerFile / proposal.cpuMsPerFile, 3)}× (proposal ${fmt(proposal.cpuMsPerFile, 1)} CPU ms/file)`,
        met: serve.cpuMsPerFile <= 0.1 * proposal.cpuMsPerFile ? 'yes' : 'NO',
      });
    }
    const missing = small.filter((r) => r.id.startsWith('serve')).reduce((n, r) => n + (r.outputsExpected - r.outputsFound), 0);
    targets.push({ target: 'every file converted (serve runs)', measured: `${missing} outputs missing`, met: missing === 0 ? 'yes' : 'NO' });
    targets.push({ target: 'p99 per-file latency (serve, keep-alive front)', measured: `${serve.p99Ms ?? '?'} ms (p50 ${serve.p50Ms ?? '?'} ms)`, met: '' });
    targets.push({
      target: `capacity from CPU, next to the proposal's claim of ${PROPOSAL_CLAIM_FILES_PER_MINUTE.toLocaleString('en')}+ files/min`,
      measured: `${Math.round(perVcpu).toLocaleString('en')} files/min per vCPU, ${Math.round(2 * perVcpu).toLocaleString('en')} per 2-vCPU task${proposal ? `; the proposal's own approach ${Math.round(filesPerMinutePerVcpu(proposal.cpuMsPerFile)).toLocaleString('en')} per vCPU` : ''}`,
      met: '',
    });
    targets.push({
      target: `Fargate $ per million files (proposal claims $${PROPOSAL_CLAIM_PER_MILLION})`,
      measured: `ours $${fmt(costPerMillion(serve.cpuMsPerFile), 3)}${proposal ? `, proposal's approach measured $${fmt(costPerMillion(proposal.cpuMsPerFile), 3)}` : ''}`,
      met: '',
    });
    if (serve.eventLoopDelayMs) targets.push({ target: "serve's event-loop delay p99 (keep-alive front)", measured: `${serve.eventLoopDelayMs.p99} ms (max ${serve.eventLoopDelayMs.max} ms)`, met: '' });
  }
  return out;
}

function report(engine?: EngineRow[], small?: ConsumerRun[], memory?: ConsumerRun, smallEngine?: SmallEngineRow[]): string {
  const out: string[] = [];
  const m = results.machine as Record<string, unknown>;
  out.push(
    `Machine: ${m.cpus} × ${m.model}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.date}, load average at start ${(m.loadAverageAtStart as number[]).join(' / ')} (${quick ? 'quick' : 'full'} run of ${m.commit}${m.srcDirty ? ' with uncommitted changes in src/' : ''})`,
  );
  const targets: { target: string; measured: string; met: string }[] = [];
  if (engine) {
    out.push(`\nEngine: ${Math.round(SIZES.engineBytes / 1e6)} MB CSV, 8 mixed columns, one process per line, outputs discarded; CPU-s count every thread`);
    out.push(
      table(
        ['', 'MB/s', 'MB per CPU-s', 'rows/s', 'seconds', 'CPU-s', 'peak RSS MiB', '× DuckDB 1 thread', 'same, by CPU-s'],
        engine.map((r) => [r.name, fmt(r.mbPerSecond), fmt(r.mbPerCpuSecond), Math.round(r.rowsPerSecond), fmt(r.seconds, 2), fmt(r.cpuSeconds, 2), Math.round(r.peakRssMiB), fmt(r.vsDuckdb1, 3), fmt(r.vsDuckdb1Cpu, 3)]),
      ),
    );
    const headline = engine.find((r) => r.headline);
    if (headline) {
      targets.push({
        target: '≥ 0.30× DuckDB threads=1 by wall, ≥ 0.20× by CPU-s (both formats, default parser)',
        measured: `${fmt(headline.vsDuckdb1, 3)}× by wall, ${fmt(headline.vsDuckdb1Cpu, 3)}× by CPU-s`,
        met: headline.vsDuckdb1! >= 0.3 && headline.vsDuckdb1Cpu! >= 0.2 ? 'yes' : 'NO',
      });
    }
  }
  if (small) out.push(...smallFilesReport(small, smallEngine, targets));
  if (memory) {
    out.push(`\nMemory: one ${Math.round(SIZES.memoryBytes / 1e6)} MB CSV through serve (WORKER_THREADS=1)`);
    out.push(
      table(
        ['', 'peak RSS MiB', 'seconds', 'MB/s', 'outputs'],
        [['serve, one large file', Math.round(memory.peakRssMiB ?? 0), fmt(memory.wallSeconds), fmt(SIZES.memoryBytes / 1e6 / memory.wallSeconds), `${memory.outputsFound}/${memory.outputsExpected}`]],
      ),
    );
    const mbps = SIZES.memoryBytes / 1e6 / memory.wallSeconds;
    targets.push({
      target: `one large file through serve ≥ 25 MB/s, peak RSS < 512 MB (${Math.round(SIZES.memoryBytes / 1e6)} MB)`,
      measured: `${fmt(mbps)} MB/s, ${Math.round(memory.peakRssMiB ?? 0)} MiB`,
      met: mbps >= 25 && (memory.peakRssMiB ?? Infinity) < 512 && memory.outputsFound === 2 ? 'yes' : 'NO',
    });
  }
  if (targets.length > 0) {
    out.push('\nTargets');
    out.push(table(['target', 'measured', 'met'], targets.map((t) => [t.target, t.measured, t.met])));
    results.targets = targets;
  }
  return out.join('\n');
}

// ---- main ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  useFakeCredentials();
  await mkdir(DATA_DIR, { recursive: true });
  let engine: EngineRow[] | undefined;
  let small: ConsumerRun[] | undefined;
  let memory: ConsumerRun | undefined;
  let smallEngine: SmallEngineRow[] | undefined;
  if (wants('engine') && !profile) {
    ensurePythonEnvs(); // the proposal's row needs bench/.venv
    const file = await bigCsv(SIZES.engineName, SIZES.engineBytes, log);
    engine = await engineSection(file, SIZES.engineBytes / 1e6, quick, log);
    results.engine = { file: path.relative(ROOT, file), megabytes: round(SIZES.engineBytes / 1e6, 0), rows: engine };
  }
  if ((wants('engine') || wants('small')) && !profile) {
    smallEngine = await smallEngineSection(await smallCsvs('small-20k', 200, SMALL_FILE_BYTES), log);
    results.engineSmallFiles = smallEngine;
  }
  if (wants('small') || wants('memory') || profile) {
    ensurePythonEnvs();
    let moto: Moto | undefined;
    try {
      moto = await startMoto();
      log(`moto server at ${moto.endpoint}`);
      const env = await createInputSide(moto.endpoint);
      if (profile) {
        const summaries = await profileSection(env);
        for (const s of summaries) {
          console.log(`\n${s.file}: busy ${s.busyMs.toFixed(0)} ms`);
          for (const [name, ms] of s.byModule.slice(0, 12)) console.log(`  ${ms.toFixed(0).padStart(7)} ms  ${name}`);
          for (const [name, ms] of Object.entries(s.inclusive)) console.log(`  ${ms.toFixed(0).padStart(7)} ms  incl. ${name}`);
        }
      } else {
        if (wants('small')) small = await smallFilesSection(env);
        if (wants('memory')) memory = await memorySection(env);
      }
      env.clients.destroy();
    } finally {
      await moto?.stop();
    }
  }
  results.seconds = Math.round((Date.now() - started) / 1000);
  if (!profile) {
    const text = report(engine, small, memory, smallEngine);
    console.log(text);
    results.table = text;
    // Every run writes results.json: a partial run (--only) replaces only the sections it ran.
    const target = path.join(BENCH_DIR, 'results.json');
    const m = results.machine as Record<string, unknown>;
    const summary = await writeResults(target, results, { mode: quick ? 'quick' : 'full', only: only ? [...only] : 'all', commit: m.commit, srcDirty: m.srcDirty, date: m.date });
    console.log(`\nsummary ${JSON.stringify(summary)}`);
    log(`wrote ${path.relative(ROOT, target)} in ${results.seconds} s`);
  } else {
    await writeFile(path.join(DATA_DIR, 'profile.json'), `${JSON.stringify(results, null, 2)}\n`);
  }
  await rm(path.join(DATA_DIR, 'tmp'), { recursive: true, force: true });
}

await main();
