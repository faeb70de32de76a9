/** Runs `s3-csv-converter serve` as a real child process, as ECS would, and watches its JSON logs. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface ServiceProcess {
  child: ChildProcess;
  healthPort: number;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line `match` accepts (waiting for it if needed). */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** GET /healthz and return the parsed body with the status. */
  health(path?: string): Promise<{ status: number; body: { totals?: Record<string, number> } & Record<string, unknown> }>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** What the child wrote to stderr so far (a crash's message, a fatal V8 error). */
  stderr(): string;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const healthPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
      HEALTH_PORT: String(healthPort),
      WAIT_TIME_SECONDS: '1',
      METRICS_FLUSH_SECONDS: '2',
      BACKOFF_BASE_SECONDS: '1',
      BACKOFF_MAX_SECONDS: '2',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<{ match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }>();
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (data: Buffer) => {
    pending += data.toString('utf8');
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text };
      }
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (data: Buffer) => {
    stderr += data.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const service: ServiceProcess = {
    child,
    healthPort,
    logs,
    exited,
    stderr: () => stderr,
    waitForLog(match, timeoutMs = 30_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve };
        waiters.add(waiter);
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching log line in ${timeoutMs} ms; stderr:\n${stderr}\nlast logs:\n${logs.slice(-10).map((l) => JSON.stringify(l)).join('\n')}`));
        }, timeoutMs);
        void exited.then(() => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(new Error(`service exited before the log line appeared; stderr:\n${stderr}`));
        });
        const original = waiter.resolve;
        waiter.resolve = (line) => {
          clearTimeout(timer);
          original(line);
        };
      });
    },
    async health(path = '/healthz') {
      const response = await fetch(`http://127.0.0.1:${healthPort}${path}`);
      return { status: response.status, body: (await response.json()) as { totals?: Record<string, number> } };
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  try {
    await service.waitForLog((line) => line.msg === 'serving', 30_000);
  } catch (error) {
    // A child that never said `serving` would otherwise keep polling the queue under later tests.
    child.kill('SIGKILL');
    throw error;
  }
  return service;
}
