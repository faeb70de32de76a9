/**
 * `dlq redrive --native`: SQS moves the messages itself (StartMessageMoveTask). End to end against
 * the emulator with the real `s3-csv-converter` as a child process: the service dead-letters real
 * files, an operator deploys the fix and moves them back natively, the service converts them. AWS and
 * LocalStack have move tasks; moto has none, so there these stories are pending (test/e2e/dlq.test.ts
 * proves the refusal there), and `npm run test:localstack` runs them.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { moveWithTask, MoveTaskUnsupportedError, unsupportedBecause } from '../../src/dlq/native.js';
import { queueArnOf } from '../../src/dlq/queues.js';
import { parseNotification } from '../../src/events/parse.js';
import { sharedEmulator, type Emulator } from '../support/emulator.js';
import { createTestPipeline, s3EventBody, type TestPipeline } from '../support/pipeline.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `s3-csv-converter …` as an operator runs it; `whileRunning` may signal it. */
async function cli(pipeline: TestPipeline, args: string[], whileRunning?: (child: ReturnType<typeof spawn>) => Promise<void>): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, AWS_ENDPOINT_URL: pipeline.endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = once(child, 'exit');
  await whileRunning?.(child);
  const [code] = (await exited) as [number | null];
  return { code, stdout, stderr };
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A pipeline whose queue holds nothing: setup made S3 send TestEvents (moto one, LocalStack one per
 * rule), all queued by the time setup returns; they are taken off, and nothing else may be there.
 */
async function pipelineWithEmptyQueue(name: string): Promise<TestPipeline> {
  const pipeline = await createTestPipeline(name);
  while ((await pipeline.depth(pipeline.queueUrl)).visible > 0) {
    for (const message of await pipeline.peek(pipeline.queueUrl, 10, 30)) {
      expect(parseNotification(message.Body ?? '').kind, message.Body).to.equal('test-event');
      await pipeline.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: pipeline.queueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
  }
  return pipeline;
}

/** The object keys the notifications visible in `queueUrl` are about (read without taking them). */
async function keysWaitingIn(pipeline: TestPipeline, queueUrl: string, expected: number): Promise<string[]> {
  const keys = new Set<string>();
  await eventually(`${expected} notifications visible in ${queueUrl}`, async () => {
    for (const message of await pipeline.peek(queueUrl, 10, 0)) {
      const notification = parseNotification(message.Body ?? '');
      if (notification.kind === 'objects') for (const object of notification.objects) keys.add(object.key);
    }
    return keys.size >= expected ? true : undefined;
  });
  return [...keys].sort();
}

describe('dlq redrive --native, end to end (StartMessageMoveTask)', function () {
  this.timeout(180_000);
  let emulator: Emulator;

  before(async function () {
    emulator = await sharedEmulator();
  });

  it('refuses what a move task cannot honour (filters, --max, --dry-run), naming them, and moves nothing', async () => {
    const pipeline = await createTestPipeline('native-refuse');
    try {
      await pipeline.clients.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.dlqUrl, MessageBody: s3EventBody(pipeline.inputBucket, 'x.csv', '"e"') }));
      const refusals: [string[], string][] = [
        [['--filter-error', 'RAGGED_ROW', '--filter-key-prefix', 'daily/', '--max', '3', '--dry-run'], '--filter-error, --filter-key-prefix, --max, --dry-run'],
        [['--filter-key-prefix', `s3://${pipeline.inputBucket}/daily/`], '--filter-key-prefix'],
      ];
      const runs = await Promise.all(refusals.map(([flags]) => cli(pipeline, ['dlq', 'redrive', '--dlq', pipeline.dlqUrl, '--native', '--yes', ...flags])));
      refusals.forEach(([flags, named], i) => {
        expect(runs[i]!.code, flags.join(' ')).to.equal(1);
        expect(runs[i]!.stderr.trim(), flags.join(' ')).to.equal(`error: dlq redrive: --native moves everything: it cannot take ${named} (the default loop can)`);
      });
      expect(await pipeline.depth(pipeline.dlqUrl)).to.deep.equal({ visible: 1, inFlight: 0 });
      expect(await pipeline.depth(pipeline.queueUrl)).to.deep.include({ inFlight: 0 });
    } finally {
      pipeline.close();
    }
  });

  describe('where the endpoint has move tasks', () => {
    before(function () {
      if (emulator.kind === 'moto') {
        console.log('      pending: moto has no StartMessageMoveTask (npm run test:localstack runs these)');
        this.skip();
      }
    });

    it('files the service dead-lettered are moved back by `dlq redrive --native --yes` and converted once the fix is deployed', async () => {
      const pipeline = await pipelineWithEmptyQueue('native-story');
      const dir = await mkdtemp(join(tmpdir(), 's3cc-native-'));
      let service: ServiceProcess | undefined;
      try {
        // The bug: a schema pinning `amount` to whole numbers, deployed for orders/.
        const schema = join(dir, 'orders-schema.json');
        await writeFile(schema, JSON.stringify({ id: 'int64', amount: 'int64' }));
        service = await startServiceProcess({ ...pipeline.env, SCHEMA_MAP: JSON.stringify({ 'orders/': schema }), WORKER_THREADS: '1', METRICS_ENABLED: 'false' });
        const keys = ['orders/2024-03-01.csv', 'orders/2024-03-02.csv'];
        for (const key of keys) await pipeline.put(key, 'id,amount\n1,12.50\n2,7.25\n');
        await eventually('both files dead-lettered', async () => {
          const dead = service!.logs.filter((line) => line.msg === 'dead-lettered');
          return dead.length >= keys.length ? dead : undefined;
        });
        expect(await pipeline.depth(pipeline.dlqUrl)).to.deep.equal({ visible: 2, inFlight: 0 });
        expect(await service.stop()).to.equal(0);
        service = undefined;

        // The operator moves them back with SQS's own move task.
        const run = await cli(pipeline, ['dlq', 'redrive', '--dlq', pipeline.dlqUrl, '--native', '--yes', '--json']);
        expect(run.code, run.stderr).to.equal(0);
        const result = JSON.parse(run.stdout) as Record<string, unknown>;
        expect(result).to.deep.include({ dlqUrl: pipeline.dlqUrl, destinationUrl: pipeline.queueUrl, native: true, status: 'COMPLETED', moved: 2 });
        expect(await pipeline.depth(pipeline.dlqUrl)).to.deep.equal({ visible: 0, inFlight: 0 });
        expect(await pipeline.depth(pipeline.queueUrl)).to.deep.equal({ visible: 2, inFlight: 0 });
        expect(await keysWaitingIn(pipeline, pipeline.queueUrl, 2)).to.deep.equal(keys);

        // The fix deployed (no pinned schema): the service converts the messages moved back.
        service = await startServiceProcess({ ...pipeline.env, WORKER_THREADS: '1', METRICS_ENABLED: 'false' });
        const converted = await eventually('both files converted', async () => {
          const done = service!.logs.filter((line) => line.msg === 'converted');
          return done.length >= keys.length ? done : undefined;
        });
        expect(converted.map((line) => line.key).sort()).to.deep.equal(keys);
        for (const key of keys) {
          const stem = key.replace(/\.csv$/, '');
          expect(await pipeline.exists(pipeline.outputBucket, `parquet/${stem}.parquet`), stem).to.equal(true);
          expect(await pipeline.exists(pipeline.outputBucket, `avro/${stem}.avro`), stem).to.equal(true);
        }
        await eventually('the queue emptied', async () => {
          const depth = await pipeline.depth(pipeline.queueUrl);
          return depth.visible === 0 && depth.inFlight === 0 ? true : undefined;
        });
        expect(await pipeline.depth(pipeline.dlqUrl)).to.deep.equal({ visible: 0, inFlight: 0 });
      } finally {
        await service?.stop();
        pipeline.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('Ctrl-C cancels the move task: what moved stays moved, the rest stays in the DLQ, and the exit code says so', async () => {
      const pipeline = await pipelineWithEmptyQueue('native-cancel');
      try {
        const total = 8;
        for (let i = 0; i < total; i++) {
          await pipeline.clients.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.dlqUrl, MessageBody: s3EventBody(pipeline.inputBucket, `late/${i}.csv`, `"e${i}"`) }));
        }
        // One message a second: interrupted once the first has moved, the task cannot have finished.
        const run = await cli(pipeline, ['dlq', 'redrive', '--dlq', pipeline.dlqUrl, '--native', '--rate', '1', '--yes'], async (child) => {
          await eventually('the first message moved', async () => ((await pipeline.depth(pipeline.dlqUrl)).visible < total ? true : undefined));
          child.kill('SIGINT');
        });
        expect(run.code).to.equal(1);
        expect(run.stderr).to.include('interrupted');
        expect(run.stdout).to.match(/^SQS move task cancelled: moved ≈\d+ from /);
        const [dlq, source] = await Promise.all([pipeline.depth(pipeline.dlqUrl), pipeline.depth(pipeline.queueUrl)]);
        expect(dlq.visible + source.visible, 'every message in one queue or the other').to.equal(total);
        expect(source.visible).to.be.within(1, total - 1);
        expect(dlq.inFlight + source.inFlight).to.equal(0);
      } finally {
        pipeline.close();
      }
    });

    it('follows the task, reporting progress, until SQS says it is complete', async () => {
      const pipeline = await pipelineWithEmptyQueue('native-follow');
      try {
        for (let i = 0; i < 4; i++) {
          await pipeline.clients.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.dlqUrl, MessageBody: s3EventBody(pipeline.inputBucket, `f/${i}.csv`, `"e${i}"`) }));
        }
        const sqs = pipeline.clients.sqs;
        const [dlqArn, destinationArn] = await Promise.all([queueArnOf(sqs, pipeline.dlqUrl), queueArnOf(sqs, pipeline.queueUrl)]);
        const progress: number[] = [];
        const result = await moveWithTask(sqs, { dlqArn, destinationArn, rate: 4, pollSeconds: 0.2, onProgress: (moved) => progress.push(moved) });
        expect(result).to.deep.include({ status: 'COMPLETED', moved: 4 });
        expect(progress.at(-1)).to.equal(4);
        expect(progress).to.deep.equal([...progress].sort((a, b) => a - b));
        expect(await pipeline.depth(pipeline.queueUrl)).to.deep.equal({ visible: 4, inFlight: 0 });
      } finally {
        pipeline.close();
      }
    });
  });
});

/** Decisions no emulator can provoke on demand: a failed task, and endpoints without the API. */
describe('redrive --native: failures no emulator provokes on demand', () => {
  type Call = { name: string; input: Record<string, unknown> };

  /** Answers each command by name; records every call. */
  function stubSqs(answers: Record<string, (input: Record<string, unknown>) => unknown>): { sqs: SQSClient; calls: Call[] } {
    const calls: Call[] = [];
    const sqs = {
      async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
        const name = command.constructor.name.replace(/Command$/, '');
        calls.push({ name, input: command.input });
        const answer = answers[name];
        if (!answer) throw new Error(`unexpected ${name}`);
        return answer(command.input);
      },
    } as unknown as SQSClient;
    return { sqs, calls };
  }

  const options = { dlqArn: 'arn:aws:sqs:us-east-1:1:q-dlq', destinationArn: 'arn:aws:sqs:us-east-1:1:q', pollSeconds: 0.01 };

  it('fails with SQS’s reason when the task fails', async () => {
    const { sqs } = stubSqs({
      StartMessageMoveTask: () => ({ TaskHandle: 'h1' }),
      ListMessageMoveTasks: () => ({ Results: [{ Status: 'FAILED', FailureReason: 'AccessDenied', ApproximateNumberOfMessagesMoved: 4 }] }),
    });
    const error = await moveWithTask(sqs, options).catch((e: Error) => e);
    expect((error as Error).message).to.equal('the SQS move task failed after moving 4 messages: AccessDenied');
  });

  it('says the endpoint lacks the API, and what to do instead, when it answers so', async () => {
    const { sqs } = stubSqs({
      StartMessageMoveTask: () => {
        throw Object.assign(new Error('Unsupported'), { name: 'UnsupportedOperation', $metadata: { httpStatusCode: 400 } });
      },
    });
    const error = await moveWithTask(sqs, options).catch((e: Error) => e);
    expect(error).to.be.instanceOf(MoveTaskUnsupportedError);
    expect((error as Error).message).to.match(/does not support SQS message move tasks .*Run without --native/);
  });

  it('tells "no such action" apart from other failures', () => {
    const moto = Object.assign(new SyntaxError('Unexpected token \'<\'\n  Deserialization error: to see the raw response…'), {
      $metadata: { httpStatusCode: 500 },
    });
    expect(unsupportedBecause(moto)).to.match(/HTTP 500 with a page that is not an SQS response/);
    expect(unsupportedBecause({ name: 'InternalFailure', $metadata: { httpStatusCode: 501 } })).to.match(/501/);
    expect(unsupportedBecause({ name: 'InvalidAction', $metadata: { httpStatusCode: 400 } })).to.match(/InvalidAction/);
    // A real SQS error is not "unsupported": it is reported as it is.
    expect(unsupportedBecause({ name: 'InternalError', message: 'We encountered an internal error', $metadata: { httpStatusCode: 500 } })).to.equal(
      undefined,
    );
    expect(unsupportedBecause({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })).to.equal(undefined);
  });

  it('refuses a rate SQS would refuse, before calling it', async () => {
    const { sqs, calls } = stubSqs({});
    const error = await moveWithTask(sqs, { ...options, rate: 501 }).catch((e: Error) => e);
    expect((error as Error).message).to.match(/whole number from 1 to 500/);
    expect(calls).to.deep.equal([]);
  });
});
