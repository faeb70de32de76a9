/**
 * What every bench step shares: where things live, the emulator it starts itself, and how it
 * reads a process's CPU time and peak memory from /proc (all threads included).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_DIR = path.join(ROOT, 'bench');
/** Generated inputs, outputs and profiles; git-ignored and kept between runs. */
export const DATA_DIR = path.join(BENCH_DIR, 'data');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** User + system CPU of a whole process (every thread), in milliseconds; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  // The process's own stat sums every thread, including ones that have exited.
  return taskCpuMs(`/proc/${pid}/stat`);
}

/** Thread names (comm) of a process, by thread id: `libuv-worker`, `node` (V8's helpers, workers)… */
export function threadNames(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      out.set(Number(tid), readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
    }
  } catch {
    // gone
  }
  return out;
}

/** User + system CPU of every thread of a process, in milliseconds, by thread id. */
export function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const ms = taskCpuMs(`/proc/${pid}/task/${tid}/stat`);
    if (ms !== undefined) out.set(Number(tid), ms);
  }
  return out;
}

function taskCpuMs(file: string): number | undefined {
  try {
    const stat = readFileSync(file, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The commit measured, and whether src/ had uncommitted changes (the build is of the working tree). */
function sourceVersion(): { commit: string; srcDirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT }).toString().trim() !== '';
    return { commit, srcDirty: dirty };
  } catch {
    return { commit: 'unknown', srcDirty: true };
  }
}

export function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    ...sourceVersion(),
    cpus: cpus.length,
    model: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

export function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export function useFakeCredentials(): void {
  // The emulator accepts any signature, but the SDK refuses to sign without credentials.
  process.env.AWS_ACCESS_KEY_ID = 'bench';
  process.env.AWS_SECRET_ACCESS_KEY = 'bench';
  process.env.AWS_REGION = 'us-east-1';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

export interface Moto {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * moto_server on a free loopback port, under a small Python guard that stops it when our end of
 * its stdin closes, so no emulator outlives the bench however the bench ends.
 */
const GUARD = `
import signal, subprocess, sys, threading
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
print(child.pid, flush=True)
def stop(*_):
    child.terminate()
    t = threading.Timer(5, child.kill); t.daemon = True; t.start()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
sys.exit(child.wait())
`;

export async function startMoto(): Promise<Moto> {
  const bin = path.join(ROOT, '.venv', 'bin');
  if (!existsSync(path.join(bin, 'moto_server'))) {
    throw new Error('no .venv/bin/moto_server: the bench runs `bash .ci/python-venv.sh` first; did it fail?');
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const guard = spawn(path.join(bin, 'python'), ['-c', GUARD, path.join(bin, 'moto_server'), '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pid = await new Promise<number>((resolve) => {
      guard.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      guard.once('exit', () => resolve(0));
    });
    const stderr: string[] = [];
    guard.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.push(chunk);
      if (stderr.length > 20) stderr.shift();
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const stop = async () => {
      await stopChild(guard);
      guard.stdout!.destroy();
      guard.stderr!.destroy();
    };
    process.once('exit', () => guard.kill());
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && guard.exitCode === null) {
      try {
        const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
        await response.arrayBuffer();
        return { endpoint, pid, stop };
      } catch {
        await sleep(100);
      }
    }
    await stop();
    if (attempt === 2) throw new Error(`moto_server did not start:\n${stderr.join('')}`);
  }
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Splits a child's stdout into lines as they arrive. */
export function onLines(stream: NodeJS.ReadableStream, handle: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const line of parts) if (line) handle(line);
  });
  stream.on('end', () => {
    if (rest) handle(rest);
  });
}

export function round(value: number | undefined, digits = 1): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
