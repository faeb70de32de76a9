/**
 * Gives tests an AWS endpoint (S3, SQS, CloudWatch). S3CC_TEST_EMULATOR chooses: `localstack`
 * (LocalStack 4.14.0 in a container started by @testcontainers/localstack; an error when no container
 * runtime answers), `moto` (moto server as a child process), or unset: the endpoint in
 * AWS_ENDPOINT_URL, else LocalStack when a container runtime answers, else moto. scripts/test.sh sets
 * it for each group of files (see docs/ARCHITECTURE.md, "Tests").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

export interface Emulator {
  endpoint: string;
  kind: 'env' | 'localstack' | 'moto';
  stop(): Promise<void>;
}

export const LOCALSTACK_IMAGE = 'localstack/localstack:4.14.0';
/** Label on every container the harness starts; scripts/test.sh removes what carries its run's value. */
export const RUN_LABEL = 's3-csv-converter.test-run';
/** Runtime detection normally answers in milliseconds; this bounds an unreachable DOCKER_HOST. */
const RUNTIME_PROBE_MS = 3_000;
const MOTO_READY_MS = 30_000;

type Choice = 'localstack' | 'moto' | 'auto';

function choice(): Choice {
  const wanted = process.env.S3CC_TEST_EMULATOR?.trim().toLowerCase() || 'auto';
  if (wanted === 'localstack' || wanted === 'moto' || wanted === 'auto') return wanted;
  if (wanted === 'none') {
    // scripts/test.sh runs the files that import no emulator this way.
    throw new Error('S3CC_TEST_EMULATOR=none: this run is for files that need no emulator (scripts/test-plan.mjs sorts them by their imports)');
  }
  throw new Error(`S3CC_TEST_EMULATOR must be localstack, moto, none or unset, not "${process.env.S3CC_TEST_EMULATOR}"`);
}

export async function startEmulator(): Promise<Emulator> {
  useFakeCredentialsUnlessSet();
  const wanted = choice();
  if (wanted === 'localstack') {
    if (!(await containerRuntimeAnswers())) {
      throw new Error('S3CC_TEST_EMULATOR=localstack, but no container runtime answers (run the tests with `npm run test:localstack`, which starts one)');
    }
    return startLocalstack();
  }
  if (wanted === 'moto') return startMoto();
  const fromEnv = process.env.AWS_ENDPOINT_URL;
  if (fromEnv) return { endpoint: fromEnv, kind: 'env', stop: async () => {} };
  if (await containerRuntimeAnswers()) return startLocalstack();
  return startMoto();
}

let shared: Promise<Emulator> | undefined;

/** One emulator for the whole test run; `stopSharedEmulator` (a mocha root hook) ends it. */
export function sharedEmulator(): Promise<Emulator> {
  shared ??= startEmulator();
  return shared;
}

export async function stopSharedEmulator(): Promise<void> {
  const running = shared;
  shared = undefined;
  if (running) await (await running.catch(() => undefined))?.stop();
}

/** A bucket- and queue-safe name (lower case, ≤ 63 chars) that no other test file will pick. */
export function uniqueName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return `${clean.slice(0, 40) || 't'}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

function useFakeCredentialsUnlessSet(): void {
  // Emulators accept any signature, but the SDK refuses to sign without credentials.
  if (!process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
  }
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) process.env.AWS_REGION = 'us-east-1';
}

/** Asks testcontainers, so the answer matches what starting a container will use. */
async function containerRuntimeAnswers(): Promise<boolean> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), RUNTIME_PROBE_MS);
    timer.unref();
  });
  const probe = getContainerRuntimeClient().then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function startLocalstack(): Promise<Emulator> {
  const { LocalstackContainer } = await import('@testcontainers/localstack');
  // A runtime on this machine (a unix socket) publishes the port on 127.0.0.1 only, so traffic to the
  // emulator stays here (testcontainers publishes on every address); a remote one (DOCKER_HOST=tcp://…)
  // must publish where this process can reach it.
  const local = !/^(tcp|https?|ssh):/.test(process.env.DOCKER_HOST ?? '');
  class LoopbackLocalstackContainer extends LocalstackContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      await super.beforeContainerCreated();
      if (local) this.hostConfig.PortBindings = { '4566/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] };
    }
  }
  const container = new LoopbackLocalstackContainer(LOCALSTACK_IMAGE)
    .withEnvironment({
      SERVICES: 's3,sqs,cloudwatch',
      // Nothing outside this machine to reach: no certificate download (~10 s of DNS timeouts where
      // there is no network), no analytics.
      SKIP_SSL_CERT_DOWNLOAD: '1',
      DISABLE_EVENTS: '1',
    })
    .withLabels({ [RUN_LABEL]: process.env.S3CC_TEST_RUN ?? 'manual' });
  const token = process.env.LOCALSTACK_AUTH_TOKEN;
  if (token) container.withEnvironment({ LOCALSTACK_AUTH_TOKEN: token });
  const started = await container.start();
  const endpoint = local ? `http://127.0.0.1:${started.getPort()}` : started.getConnectionUri();
  // Where testcontainers' reaper (Ryuk) runs, it removes the container if this process dies first;
  // where it cannot (TESTCONTAINERS_RYUK_DISABLED), scripts/test.sh removes it by its run label.
  const stopOnSignal = (signal: NodeJS.Signals) => {
    void started.stop({ timeout: 0 }).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  return {
    endpoint,
    kind: 'localstack',
    stop: async () => {
      process.off('SIGINT', stopOnSignal);
      process.off('SIGTERM', stopOnSignal);
      await started.stop();
    },
  };
}

/**
 * moto_server runs under a small Python guard that kills it when our end of its stdin pipe
 * closes. The kernel closes that pipe however this process ends, even on SIGKILL, so no
 * emulator outlives the tests.
 */
const GUARD = `
import signal, subprocess, sys, threading
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def stop(*_):
    child.terminate()
    timer = threading.Timer(5, child.kill)
    timer.daemon = True
    timer.start()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
sys.exit(child.wait())
`;

async function startMoto(): Promise<Emulator> {
  const venvBin = findVenvBin();
  let lastError: unknown;
  // A freshly freed port can be taken before moto binds it; a new port fixes that.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(join(venvBin, 'python'), ['-c', GUARD, join(venvBin, 'moto_server'), '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const stderr: string[] = [];
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.push(chunk);
      if (stderr.length > 50) stderr.shift();
    });
    const killOnExit = () => child.kill('SIGTERM');
    process.on('exit', killOnExit);
    // The emulator must not keep the test process alive by itself.
    child.unref();
    (child.stdin as Socket | null)?.unref();
    (child.stderr as Socket | null)?.unref();
    try {
      await waitUntilAnswering(endpoint, child, stderr);
      return {
        endpoint,
        kind: 'moto',
        stop: async () => {
          process.off('exit', killOnExit);
          await stopChild(child);
        },
      };
    } catch (error) {
      lastError = error;
      process.off('exit', killOnExit);
      await stopChild(child);
    }
  }
  throw lastError;
}

function findVenvBin(): string {
  // Walk up from this file: it runs from test/support or dist/test/support.
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const bin = join(dir, '.venv', 'bin');
    if (existsSync(join(bin, 'moto_server'))) return bin;
    if (dirname(dir) === dir) {
      throw new Error('no .venv/bin/moto_server found above the tests: run `bash .ci/python-venv.sh`');
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilAnswering(endpoint: string, child: ChildProcess, stderr: string[]): Promise<void> {
  const deadline = Date.now() + MOTO_READY_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`moto_server exited (${child.exitCode ?? child.signalCode}) before answering:\n${stderr.join('')}`);
    }
    try {
      // Any HTTP answer means it is serving.
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`moto_server did not answer at ${endpoint} within ${MOTO_READY_MS} ms:\n${stderr.join('')}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end(); // the guard's cue to stop moto
  const forced = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(forced);
}
