/**
 * The image as ECS runs it: built from the Dockerfile with podman, started with a read-only root
 * and a tmpfs /tmp on the host network against the emulator, fed CSVs through S3, stopped with SIGTERM.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { setupPipeline, type SetupResult } from '../../src/cli/setup.js';
import { RUN_LABEL, sharedEmulator, uniqueName } from '../support/emulator.js';
import { runPython } from '../support/python.js';
import { freePort } from '../support/service.js';
import { REPO_ROOT } from '../deploy/deploy-files.js';
import { readAvro, readParquet } from '../formats/readers.js';

const run = promisify(execFile);
const IMAGE = 's3-csv-converter:test';
const GRACE_SECONDS = 10;
const PARQUET_MAGIC = 'PAR1';
const AVRO_MAGIC = 'Obj\u0001';

async function podmanAvailable(): Promise<string | undefined> {
  try {
    await run('podman', ['--version']);
    return undefined;
  } catch {
    return 'podman is not installed (as root on Debian, bash docker/podman-build.sh installs it)';
  }
}

/** Runs docker/podman-build.sh, keeping its output for the failure message. */
function buildImage(root: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(root, 'docker', 'podman-build.sh')], {
      env: { ...process.env, IMAGE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`podman-build.sh exited ${code}:\n${output.slice(-4000)}`))));
  });
}

/** Source bytes the service keeps in memory before spilling rows to TMP_DIR (src/pipeline/convert.ts). */
const MEMORY_SPOOL_BYTES = 8 * 1024 * 1024;

/** A CSV over the in-memory limit, so its rows are spilled to TMP_DIR: the tmpfs on a read-only root. */
function spillingCsv(): string {
  const lines = ['id,reading,at,site'];
  let bytes = 0;
  for (let i = 0; bytes <= MEMORY_SPOOL_BYTES * 1.25; i++) {
    const line = `${i},${(i * 0.37).toFixed(3)},2024-03-${String((i % 28) + 1).padStart(2, '0')}T12:00:00Z,site-${i % 97}`;
    lines.push(line);
    bytes += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

describe('the container image, run as ECS runs it (podman)', function () {
  // A cold build makes the base image first (debootstrap, npm ci): about 2 minutes on 2 cores.
  this.timeout(420_000);
  const root = REPO_ROOT;
  const container = `s3cc-e2e-${randomBytes(4).toString('hex')}`;
  let clients: AwsClients;
  let pipeline: SetupResult;
  let healthPort: number;
  let started = false;

  async function logLines(): Promise<Record<string, unknown>[]> {
    const { stdout } = await run('podman', ['logs', container], { maxBuffer: 64 * 1024 * 1024 });
    return stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        const logs = await logLines().catch(() => []);
        throw new Error(`${what}: not within ${timeoutMs} ms; last logs:\n${logs.slice(-10).map((l) => JSON.stringify(l)).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  before(async function () {
    const missing = await podmanAvailable();
    if (missing) {
      // CI installs podman; there, a missing engine is a failure, not a reason to skip.
      if (process.env.CI === 'true') throw new Error(`container test cannot run in CI: ${missing}`);
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const [emulator] = await Promise.all([sharedEmulator(), buildImage(root)]);
    clients = createAwsClients({ endpoint: emulator.endpoint });
    pipeline = await setupPipeline(clients, {
      inputBucket: uniqueName('container-in'),
      outputBucket: uniqueName('container-out'),
      queue: uniqueName('container-q'),
    });
    healthPort = await freePort();
    const env: Record<string, string> = {
      QUEUE_URL: pipeline.queueUrl,
      OUTPUT_BUCKET: pipeline.outputBucket,
      OUTPUT_PREFIX: 'converted/',
      AWS_ENDPOINT_URL: emulator.endpoint,
      AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
      HEALTH_PORT: String(healthPort),
      WAIT_TIME_SECONDS: '1',
      METRICS_FLUSH_SECONDS: '2',
      METRICS_NAMESPACE: uniqueName('container-ns'),
      SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      LOG_LEVEL: 'info',
    };
    await run(
      'podman',
      [
        'run', '--detach', '--name', container, '--label', 's3-csv-converter.test=container',
        // scripts/test.sh removes what carries its run's label should the run be interrupted.
        '--label', `${RUN_LABEL}=${process.env.S3CC_TEST_RUN ?? 'manual'}`,
        '--network', 'host',
        '--read-only', '--tmpfs', '/tmp:rw,size=256m',
        // No systemd here to run the interval; the test runs the HEALTHCHECK itself.
        '--health-interval', 'disable',
        ...Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
        // By name only: podman copies the values from this process, so they stay off the command line.
        '--env', 'AWS_ACCESS_KEY_ID', '--env', 'AWS_SECRET_ACCESS_KEY',
        IMAGE,
      ],
      { env: process.env },
    );
    started = true;
    await waitFor('the "serving" log line', async () => (await logLines()).find((line) => line.msg === 'serving'));
  });

  after(async () => {
    if (started) await run('podman', ['rm', '--force', '--time', '0', container]).catch(() => undefined);
    clients?.destroy();
  });

  it('runs as the unprivileged node user (uid 1000), not root, with no build secret left behind', async () => {
    const { stdout: user } = await run('podman', ['exec', container, 'id', '-u']);
    expect(user.trim()).to.equal('1000');
    const { stdout: config } = await run('podman', ['image', 'inspect', IMAGE, '--format', '{{json .Config}}']);
    const { Env = [], User } = JSON.parse(config) as { Env?: string[]; User?: string };
    expect(User).to.equal('1000:1000');
    expect(Env.join('\n')).not.to.include('NODE_EXTRA_CA_CERTS');
    await run('podman', ['exec', container, 'sh', '-c', 'test ! -e /run/secrets/extra_ca']);
  });

  it('passes its own HEALTHCHECK (node docker/healthcheck.mjs, no curl in the image) and answers /readyz', async () => {
    const { stdout: check } = await run('podman', ['inspect', container, '--format', '{{json .Config.Healthcheck.Test}}']);
    expect(JSON.parse(check)).to.deep.equal(['CMD', 'node', '/app/docker/healthcheck.mjs']);
    await run('podman', ['healthcheck', 'run', container]); // rejects unless the check exits 0
    const { stdout: status } = await run('podman', ['inspect', container, '--format', '{{.State.Health.Status}}']);
    expect(status.trim()).to.equal('healthy');
    const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
    expect(ready.status).to.equal(200);
    await ready.arrayBuffer();
  });

  it('cannot write outside /tmp: the root filesystem is read-only', async () => {
    const write = run('podman', ['exec', container, 'sh', '-c', 'touch /app/written']);
    await write.then(
      () => expect.fail('writing /app succeeded'),
      (error: { stderr?: string }) => expect(error.stderr ?? '').to.match(/read-only file system/i),
    );
  });

  it('CSVs dropped in the input bucket appear as Parquet and Avro, including one spilled to the tmpfs', async () => {
    const inputs: Record<string, Uint8Array | string> = {
      'incoming/sales.csv': await readFile(join(root, 'samples', 'sales.csv')),
      'incoming/sensors.csv.gz': await readFile(join(root, 'samples', 'sensors.csv.gz')),
      'incoming/big/readings.csv': spillingCsv(),
    };
    for (const [key, body] of Object.entries(inputs)) {
      await clients.s3.send(new PutObjectCommand({ Bucket: pipeline.inputBucket, Key: key, Body: body }));
    }
    const expected = [
      'converted/avro/incoming/big/readings.avro',
      'converted/avro/incoming/sales.avro',
      'converted/avro/incoming/sensors.avro',
      'converted/parquet/incoming/big/readings.parquet',
      'converted/parquet/incoming/sales.parquet',
      'converted/parquet/incoming/sensors.parquet',
    ];
    const keys = await waitFor(
      'all six outputs',
      async () => {
        const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: pipeline.outputBucket }));
        const found = (listed.Contents ?? []).map((object) => object.Key!).sort();
        return found.length >= expected.length ? found : undefined;
      },
      120_000,
    );
    expect(keys).to.deep.equal(expected);
    for (const key of keys) {
      const object = await clients.s3.send(new GetObjectCommand({ Bucket: pipeline.outputBucket, Key: key }));
      const head = Buffer.from(await object.Body!.transformToByteArray()).subarray(0, 4).toString('latin1');
      expect(head, key).to.equal(key.endsWith('.parquet') ? PARQUET_MAGIC : AVRO_MAGIC);
    }
    const converted = (await logLines()).filter((line) => line.msg === 'converted');
    expect(converted.map((line) => line.key).sort()).to.deep.equal(Object.keys(inputs).sort());
  });

  it('podman stop (SIGTERM) drains and exits 0 within the grace period, with a clean shutdown log', async () => {
    const began = Date.now();
    await run('podman', ['stop', '--time', String(GRACE_SECONDS + 20), container]);
    const seconds = (Date.now() - began) / 1000;
    const { stdout } = await run('podman', ['inspect', container, '--format', '{{.State.ExitCode}}']);
    expect(Number(stdout.trim()), 'exit code').to.equal(0);
    expect(seconds, 'seconds to stop').to.be.below(GRACE_SECONDS + 5);
    const logs = await logLines();
    const messages = logs.map((line) => line.msg);
    expect(messages).to.include('signal received');
    expect(logs.find((line) => line.msg === 'signal received')?.signal).to.equal('SIGTERM');
    expect(messages.at(-1)).to.equal('stopped');
    const troubled = logs.filter((line) => ['warn', 'error', 'fatal', '40', '50', '60'].includes(String(line.level)));
    expect(troubled).to.deep.equal([]);
  });
});

/**
 * The README's compose walk-through, run as written with podman-compose (docker/podman-compose.sh,
 * which makes the images no registry gives here): LocalStack 4.14.0, whose ready.d hook
 * (docker/localstack/init-pipeline.py) creates the pipeline, and the converter built from the
 * Dockerfile; a file dropped with the `drop` tool is converted, and the outputs read back.
 */
describe('the compose walk-through (podman-compose, LocalStack)', function () {
  this.timeout(420_000);
  const root = REPO_ROOT;
  // scripts/test.sh removes this project's containers by name should the run be interrupted.
  const project = `s3cc-walkthrough-${process.env.S3CC_TEST_RUN ?? randomBytes(3).toString('hex')}`;
  // Published by docker-compose.yml on loopback (in scripts/test.sh's private network namespace).
  const endpoint = 'http://127.0.0.1:4566';
  const healthUrl = 'http://127.0.0.1:8080/readyz';
  let clients: AwsClients | undefined;
  let up = false;
  let dir: string | undefined;

  function compose(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('bash', [join(root, 'docker', 'podman-compose.sh'), '-p', project, ...args], {
      cwd: root,
      env: process.env,
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe().catch(() => undefined);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  before(async function () {
    const missing = await podmanAvailable();
    if (missing) {
      if (process.env.CI === 'true') throw new Error(`compose walk-through cannot run in CI: ${missing}`);
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    clients = createAwsClients({ endpoint });
    dir = await mkdtemp(join(tmpdir(), 's3cc-walkthrough-'));
  });

  after(async () => {
    if (up) await compose('--profile', 'tools', 'down', '-t', '0').catch(() => undefined);
    clients?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('`up -d` starts LocalStack, whose init hook creates the pipeline, then the converter, which becomes ready', async () => {
    up = true;
    await compose('up', '-d');
    const { stdout: image } = await run('podman', ['inspect', `${project}_localstack_1`, '--format', '{{.ImageName}}']);
    expect(image.trim()).to.match(/localstack\/localstack:4\.14\.0$/);
    const hooks = (await (await fetch(`${endpoint}/_localstack/init/ready`)).json()) as { completed: boolean; scripts: { name: string; state: string }[] };
    expect(hooks).to.deep.equal({ completed: true, scripts: [{ stage: 'READY', name: 'init-pipeline.py', state: 'SUCCESSFUL' }] });
    const ready = await eventually('the converter’s /readyz', async () => ((await fetch(healthUrl)).status === 200 ? true : undefined));
    expect(ready).to.equal(true);
  });

  it('`run --rm drop samples/sales.csv` drops the sample; the converter writes Parquet and Avro that read back as the CSV', async () => {
    const { stdout } = await compose('--profile', 'tools', 'run', '--rm', 'drop', 'samples/sales.csv');
    expect(stdout).to.include('dropped samples/sales.csv -> s3://s3cc-input/incoming/sales.csv');
    const keys = await eventually('the outputs in s3cc-output', async () => {
      const listed = await clients!.s3.send(new ListObjectsV2Command({ Bucket: 's3cc-output' }));
      const found = (listed.Contents ?? []).map((object) => object.Key!).sort();
      return found.length >= 2 ? found : undefined;
    });
    expect(keys).to.deep.equal(['avro/incoming/sales.avro', 'parquet/incoming/sales.parquet']);
    // Rows as Python's csv module counts them (quoted fields hold line breaks).
    const csvRows = Number(await runPython('import csv, sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))) - 1)', [join(root, 'samples', 'sales.csv')]));
    expect(csvRows).to.be.greaterThan(0);
    for (const key of keys) {
      const object = await clients!.s3.send(new GetObjectCommand({ Bucket: 's3cc-output', Key: key }));
      const path = join(dir!, key.replaceAll('/', '_'));
      await writeFile(path, await object.Body!.transformToByteArray());
      const read = key.endsWith('.parquet') ? await readParquet(path) : await readAvro(path);
      expect(read.rows, key).to.equal(csvRows);
      expect(Object.keys(read.types), key).to.include.members(['order_id', 'order_date', 'unit_price', 'paid']);
    }
  });

  it('`stop` lets the converter drain and exit 0', async () => {
    await compose('stop', 'converter');
    const container = `${project}_converter_1`;
    const { stdout: code } = await run('podman', ['inspect', container, '--format', '{{.State.ExitCode}}']);
    expect(Number(code.trim())).to.equal(0);
    const { stdout: logs } = await run('podman', ['logs', container]);
    // LOG_PRETTY is on in compose: coloured text, not JSON.
    const plain = logs.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).to.match(/signal received[\s\S]*stopped/);
    expect(plain).not.to.match(/\b(WARN|ERROR|FATAL)\b/);
  });
});
