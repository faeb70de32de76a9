import { expect } from 'chai';
import { Command } from 'commander';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { registerDlqCommand, type DlqCommandDeps } from '../../src/cli/dlq.js';
import { setupPipeline, type SetupResult } from '../../src/cli/setup.js';
import { redriveDlq } from '../../src/dlq/redrive.js';
import { parseNotification } from '../../src/events/parse.js';
import { DEAD_LETTER_ATTRIBUTES, deadLetter } from '../../src/events/dead-letters.js';
import { sharedEmulator, uniqueName, type Emulator } from '../support/emulator.js';
import { startServiceProcess } from '../support/service.js';

describe('DLQ tools, against the emulator', () => {
  let emulator: Emulator;
  let clients: AwsClients;

  before(async () => {
    emulator = await sharedEmulator();
    clients = createAwsClients({ endpoint: emulator.endpoint });
  });

  after(() => clients?.destroy());

  // ---- seeding: real objects, real S3 notifications, real dead letters ----

  /**
   * A fresh pipeline whose queue is empty: its s3:TestEvents drained (moto sends one for the
   * configuration, LocalStack one per rule; either way they come before the first object event).
   */
  async function newPipeline(prefix: string, maxReceiveCount = 1): Promise<SetupResult> {
    const pipeline = await setupPipeline(clients, {
      inputBucket: uniqueName(`${prefix}-in`),
      outputBucket: uniqueName(`${prefix}-out`),
      queue: uniqueName(`${prefix}-q`),
      maxReceiveCount,
    });
    const isTestEvent = (body: string) => parseNotification(body).kind === 'test-event';
    await receiveFrom(pipeline.queueUrl, isTestEvent);
    // S3 sends them while it accepts the configuration, so they are all queued by now.
    while ((await depthOf(pipeline.queueUrl)).visible > 0) await receiveFrom(pipeline.queueUrl, isTestEvent);
    return pipeline;
  }

  /** Receives until a message whose body `wanted` accepts arrives, deletes it and returns it. */
  async function receiveFrom(queueUrl: string, wanted: (body: string) => boolean, seconds = 15): Promise<Message> {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 30,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      for (const message of Messages) {
        if (!wanted(message.Body ?? '')) throw new Error(`unexpected message in ${queueUrl}: ${message.Body}`);
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
        return message;
      }
    }
    throw new Error(`nothing arrived in ${queueUrl} within ${seconds} s`);
  }

  const isAbout = (key: string) => (body: string) => {
    const notification = parseNotification(body);
    return notification.kind === 'objects' && notification.objects.some((object) => object.key === key);
  };

  /** Puts an object; resolves with its ETag, bare. */
  async function putObject(bucket: string, key: string, body: string): Promise<string> {
    const { ETag } = await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    return (ETag ?? '').replace(/"/g, '');
  }

  /**
   * What the service does with a permanent failure: puts the object, takes S3's notification from
   * the queue and dead-letters it with `deadLetter` (optionally as if the original had attributes).
   */
  async function deadLetterObject(
    pipeline: SetupResult,
    key: string,
    code: string,
    reason: string,
    ownAttributes?: Record<string, MessageAttributeValue>,
  ): Promise<Message> {
    await putObject(pipeline.inputBucket, key, 'id,amount\n1,2\n3,4,5\n');
    const message = await receiveFrom(pipeline.queueUrl, isAbout(key));
    const original = ownAttributes ? { ...message, MessageAttributes: { ...message.MessageAttributes, ...ownAttributes } } : message;
    await deadLetter(clients.sqs, pipeline.dlqUrl, original, { kind: 'permanent', code, message: `s3://${pipeline.inputBucket}/${key}: ${reason}` });
    return message;
  }

  /** A body that is no notification at all, dead-lettered the way the service does it. */
  async function deadLetterPoison(pipeline: SetupResult, body: string): Promise<void> {
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrl, MessageBody: body }));
    const message = await receiveFrom(pipeline.queueUrl, (received) => received === body);
    await deadLetter(clients.sqs, pipeline.dlqUrl, message, { kind: 'permanent', code: 'MALFORMED_MESSAGE', message: 'message body is not JSON' });
  }

  /** Receives the object's notification past maxReceiveCount, so SQS itself moves it to the DLQ. */
  async function exhaustReceives(pipeline: SetupResult, key: string): Promise<Message> {
    const before = await depthOf(pipeline.dlqUrl);
    await putObject(pipeline.inputBucket, key, 'id\n1\n');
    let first: Message | undefined;
    const deadline = Date.now() + 20_000;
    while ((await depthOf(pipeline.dlqUrl)).visible === before.visible) {
      if (Date.now() > deadline) throw new Error(`the notification for ${key} never reached the DLQ`);
      // Visibility 0: received (a failed attempt), then visible again at once.
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: pipeline.queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 0 }),
      );
      first ??= Messages[0];
    }
    if (!first) throw new Error('the notification was never received');
    return first;
  }

  async function depthOf(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
    const { Attributes = {} } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return { visible: Number(Attributes.ApproximateNumberOfMessages), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible) };
  }

  /** Takes everything out of a queue (it must be one nobody else reads). */
  async function drain(queueUrl: string): Promise<Message[]> {
    const taken: Message[] = [];
    for (let empty = 0; empty < 2; ) {
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30, MessageAttributeNames: ['All'] }),
      );
      empty = Messages.length === 0 ? empty + 1 : 0;
      for (const message of Messages) {
        taken.push(message);
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
      }
    }
    return taken;
  }

  const keysIn = (messages: Message[]) =>
    messages
      .flatMap((message) => {
        const notification = parseNotification(message.Body ?? '');
        return notification.kind === 'objects' ? notification.objects.map((object) => object.key) : [];
      })
      .sort();

  /** An SQS client whose every `commandName` call fails as if the connection dropped. */
  function failing(commandName: string): AwsClients {
    const faulty = createAwsClients({ endpoint: emulator.endpoint });
    faulty.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === commandName) throw Object.assign(new Error(`injected: connection lost before ${commandName}`), { code: 'ECONNRESET' });
        return next(args);
      },
      { step: 'initialize', name: 'injectFailure' },
    );
    return faulty;
  }

  async function runCli(args: string[], deps: Partial<DlqCommandDeps> = {}) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const program = new Command('s3-csv-converter').exitOverride();
    registerDlqCommand(program, {
      clients: () => clients,
      print: (text) => stdout.push(text),
      printError: (text) => stderr.push(text),
      interactive: () => false,
      ...deps,
    });
    process.exitCode = undefined;
    let error: Error | undefined;
    try {
      await program.parseAsync(['dlq', ...args], { from: 'user' });
    } catch (caught) {
      error = caught as Error;
    }
    const exitCode = process.exitCode;
    process.exitCode = undefined;
    return { stdout: stdout.join('\n'), stderr: stderr.join('\n'), exitCode, error };
  }

  // ---- inspect ----

  describe('a DLQ holding every kind of dead letter', () => {
    let pipeline: SetupResult;
    let redrivenBySqs: Message;

    before(async () => {
      pipeline = await newPipeline('dlq-kinds');
      await deadLetterObject(pipeline, 'daily/a.csv', 'RAGGED_ROW', 'line 3: row has 3 fields, the header has 2');
      await deadLetterObject(pipeline, 'daily/b c.csv', 'RAGGED_ROW', 'line 3: row has 3 fields, the header has 2');
      await deadLetterObject(pipeline, 'weekly/c.csv', 'SCHEMA_VIOLATION', 'line 2: column amount: "x" is not a double');
      await deadLetterPoison(pipeline, 'hello, not json');
      redrivenBySqs = await exhaustReceives(pipeline, 'weekly/d.csv');
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('inspect shows why each one failed and groups them by code, and leaves the DLQ as it was', async () => {
      const { stdout, exitCode, error } = await runCli(['inspect', '--queue', pipeline.queueUrl, '--json']);
      expect(error).to.equal(undefined);
      expect(exitCode).to.equal(undefined);
      const report = JSON.parse(stdout);
      expect(report.dlqUrl).to.equal(pipeline.dlqUrl);
      expect(report.complete).to.equal(true);
      const bySubject = Object.fromEntries(report.letters.map((letter: { subject: string }) => [letter.subject, letter]));
      const bucket = pipeline.inputBucket;
      expect(Object.keys(bySubject).sort()).to.deep.equal(
        [`s3://${bucket}/daily/a.csv`, `s3://${bucket}/daily/b c.csv`, `s3://${bucket}/weekly/c.csv`, `s3://${bucket}/weekly/d.csv`, 'unreadable body: message body is not JSON (starts with "hello, not json")'].sort(),
      );
      expect(bySubject[`s3://${bucket}/daily/a.csv`]).to.deep.include({
        code: 'RAGGED_ROW',
        reason: `s3://${bucket}/daily/a.csv: line 3: row has 3 fields, the header has 2`,
        attempts: 1,
      });
      expect(bySubject[`s3://${bucket}/daily/a.csv`].ageSeconds).to.be.within(0, 120);
      expect(bySubject[`s3://${bucket}/weekly/d.csv`]).to.deep.include({ code: 'MAX_RECEIVES', messageId: redrivenBySqs.MessageId });
      expect(report.byCode.map((summary: { code: string; count: number }) => [summary.code, summary.count])).to.deep.equal([
        ['RAGGED_ROW', 2],
        ['MALFORMED_MESSAGE', 1],
        ['MAX_RECEIVES', 1],
        ['SCHEMA_VIOLATION', 1],
      ]);
      // Everything is still there, and visible at once.
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('inspect prints a report a person can read', async () => {
      const { stdout } = await runCli(['inspect', '--dlq', pipeline.dlqUrl]);
      expect(stdout).to.include(`${pipeline.dlqUrl}: 5 messages read (≈5 waiting`);
      expect(stdout).to.include(`RAGGED_ROW  s3://${pipeline.inputBucket}/daily/a.csv\n  failed `);
      expect(stdout).to.include(`  s3://${pipeline.inputBucket}/weekly/c.csv: line 2: column amount: "x" is not a double`);
      expect(stdout).to.match(/MAX_RECEIVES {2}s3:\/\/\S+\/weekly\/d\.csv\n {2}first sent \S+ \(\d+s ago\), message \S+\n {2}moved by the source queue's redrive policy/);
      expect(stdout).to.match(/by error code:\n {2}RAGGED_ROW +2, oldest \d+s ago {2}e\.g\. s3:\/\//);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('inspect --max reads no more than asked, and says there may be more', async () => {
      const { stdout } = await runCli(['inspect', '--dlq', pipeline.dlqUrl, '--max', '2', '--json']);
      const report = JSON.parse(stdout);
      expect(report.letters).to.have.length(2);
      expect(report.complete).to.equal(false);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('redrive --dry-run moves nothing and names what would move', async () => {
      const { stdout, exitCode } = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--filter-error', 'ragged_row', '--dry-run']);
      expect(exitCode).to.equal(undefined);
      expect(stdout).to.include(`dry run: would move 2 from ${pipeline.dlqUrl} to ${pipeline.queueUrl}, skipped 3; nothing was moved`);
      expect(stdout).to.include(`RAGGED_ROW  s3://${pipeline.inputBucket}/daily/a.csv`);
      expect(stdout).to.include(`RAGGED_ROW  s3://${pipeline.inputBucket}/daily/b c.csv`);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
      expect(await depthOf(pipeline.queueUrl)).to.deep.equal({ visible: 0, inFlight: 0 });
    });

    it('redrive refuses to move anything without --yes when there is no one to ask', async () => {
      const { error } = await runCli(['redrive', '--dlq', pipeline.dlqUrl]);
      expect(error?.message).to.match(/refusing to move messages without --yes when there is no terminal to ask on .*add --yes, or --dry-run/);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('redrive asks on a terminal, and moves nothing when the answer is no', async () => {
      const questions: string[] = [];
      const { stderr, exitCode } = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--filter-key-prefix', 'daily/'], {
        interactive: () => true,
        confirm: async (question) => {
          questions.push(question);
          return false;
        },
      });
      expect(questions).to.deep.equal([
        `Move all ≈5 messages (only key prefix "daily/") from ${pipeline.dlqUrl} to ${pipeline.queueUrl}? [y/N] `,
      ]);
      expect(stderr).to.equal('nothing moved');
      expect(exitCode).to.equal(1);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('redrive --native says plainly that moto has no move tasks, and moves nothing', async function () {
      if (emulator.kind !== 'moto') this.skip();
      const { error } = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--native', '--yes']);
      expect(error?.message).to.match(/^--native: this endpoint does not support SQS message move tasks .*Run without --native/);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });

    it('redrive refuses flags --native cannot honour, and a destination that is the DLQ itself', async () => {
      const native = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--native', '--dry-run', '--max', '1']);
      expect(native.error?.message).to.equal('dlq redrive: --native moves everything: it cannot take --max, --dry-run (the default loop can)');
      const loop = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--to', pipeline.dlqUrl, '--yes']);
      expect(loop.error?.message).to.match(/is the DLQ itself/);
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 5, inFlight: 0 });
    });
  });

  it('inspect reads a DLQ far larger than one receive returns', async () => {
    const pipeline = await newPipeline('dlq-many');
    const original = await deadLetterObject(pipeline, 'many/0.csv', 'EMPTY_FILE', 'the file is empty');
    for (let i = 1; i < 25; i++) {
      await deadLetter(clients.sqs, pipeline.dlqUrl, { ...original, MessageId: `copy-${i}` }, { kind: 'permanent', code: 'EMPTY_FILE', message: 'empty' });
    }
    const { stdout } = await runCli(['inspect', '--dlq', pipeline.dlqUrl, '--json']);
    const report = JSON.parse(stdout);
    expect(report.letters).to.have.length(25);
    expect(new Set(report.letters.map((letter: { messageId: string }) => letter.messageId)).size).to.equal(25);
    expect(report.byCode).to.deep.equal([{ code: 'EMPTY_FILE', count: 25, oldest: report.byCode[0].oldest, newest: report.byCode[0].newest, example: `s3://${pipeline.inputBucket}/many/0.csv` }]);
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 25, inFlight: 0 });
  });

  // ---- redrive ----

  it('redrive --filter-error moves only those codes to the queue that uses the DLQ: original body, our attributes gone, the rest kept', async () => {
    const pipeline = await newPipeline('dlq-codes');
    const traced = await deadLetterObject(pipeline, 'in/a.csv', 'RAGGED_ROW', 'line 3', { 'trace-id': { DataType: 'String', StringValue: 'trace-42' } });
    const plain = await deadLetterObject(pipeline, 'in/b.csv', 'RAGGED_ROW', 'line 3');
    await deadLetterObject(pipeline, 'in/c.csv', 'SCHEMA_VIOLATION', 'line 2');
    const bySqs = await exhaustReceives(pipeline, 'in/d.csv');

    // No --to: the destination is found with ListDeadLetterSourceQueues.
    const { stdout, exitCode, error } = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--filter-error', 'RAGGED_ROW,MAX_RECEIVES', '--yes', '--json']);
    expect(error).to.equal(undefined);
    expect(exitCode).to.equal(undefined);
    const result = JSON.parse(stdout);
    expect(result).to.deep.include({ destinationUrl: pipeline.queueUrl, moved: 3, skipped: 1, failed: 0, wouldMove: 0, stillHidden: 0 });

    const back = await drain(pipeline.queueUrl);
    expect(keysIn(back)).to.deep.equal(['in/a.csv', 'in/b.csv', 'in/d.csv']);
    const byKey = Object.fromEntries(back.map((message) => [keysIn([message])[0], message]));
    expect(byKey['in/a.csv']!.Body).to.equal(traced.Body);
    expect(byKey['in/b.csv']!.Body).to.equal(plain.Body);
    expect(byKey['in/d.csv']!.Body).to.equal(bySqs.Body);
    expect(byKey['in/a.csv']!.MessageAttributes).to.deep.equal({ 'trace-id': { DataType: 'String', StringValue: 'trace-42' } });
    for (const message of back) {
      for (const name of DEAD_LETTER_ATTRIBUTES) expect(message.MessageAttributes ?? {}).to.not.have.property(name);
    }
    // The one it skipped is still in the DLQ, visible.
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 1, inFlight: 0 });
    expect(keysIn(await drain(pipeline.dlqUrl))).to.deep.equal(['in/c.csv']);
  });

  it('redrive --filter-key-prefix with --max moves only that many of the matching ones; --max alone takes any', async () => {
    const pipeline = await newPipeline('dlq-prefix');
    for (const key of ['weekly/1.csv', 'daily/1.csv', 'weekly/2.csv', 'daily/2.csv', 'daily/3.csv']) {
      await deadLetterObject(pipeline, key, 'RAGGED_ROW', 'line 3');
    }
    // --to alone: its RedrivePolicy names the DLQ.
    const first = await runCli(['redrive', '--to', pipeline.queueUrl, '--filter-key-prefix', `s3://${pipeline.inputBucket}/daily/`, '--max', '2', '--yes']);
    expect(first.stdout).to.match(new RegExp(`^moved 2, skipped \\d, failed 0 from ${pipeline.dlqUrl} to `));
    const moved = keysIn(await drain(pipeline.queueUrl));
    expect(moved).to.have.length(2);
    for (const key of moved) expect(key).to.match(/^daily\//);
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 3, inFlight: 0 });

    const second = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--max', '1', '--yes', '--json']);
    expect(JSON.parse(second.stdout)).to.deep.include({ moved: 1, skipped: 0, failed: 0 });
    expect(await drain(pipeline.queueUrl)).to.have.length(1);
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 2, inFlight: 0 });
  });

  it('a failure between send and delete leaves the message in both queues, never in neither', async () => {
    const pipeline = await newPipeline('dlq-crash');
    const a = await deadLetterObject(pipeline, 'crash/a.csv', 'RAGGED_ROW', 'line 3');
    const b = await deadLetterObject(pipeline, 'crash/b.csv', 'RAGGED_ROW', 'line 3');
    const faulty = failing('DeleteMessageBatchCommand');
    try {
      const { stdout, stderr, exitCode } = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--yes'], { clients: () => faulty });
      expect(exitCode).to.equal(1);
      expect(stdout).to.match(/^moved 0, skipped 0, failed 2 /);
      expect(stderr).to.include('sent, but not deleted from the DLQ, so it is in both queues: injected: connection lost before DeleteMessageBatchCommand');
    } finally {
      faulty.destroy();
    }
    // In the destination, as sent...
    const sent = await drain(pipeline.queueUrl);
    expect(sent.map((message) => message.Body).sort()).to.deep.equal([a.Body, b.Body].sort());
    // ...and still in the DLQ, visible again, reasons intact.
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 2, inFlight: 0 });
    const kept = await drain(pipeline.dlqUrl);
    expect(kept.map((message) => message.MessageAttributes?.['error-code']?.StringValue)).to.deep.equal(['RAGGED_ROW', 'RAGGED_ROW']);
  });

  it('a failed send leaves the message in the DLQ only', async () => {
    const pipeline = await newPipeline('dlq-nosend');
    await deadLetterObject(pipeline, 'nosend/a.csv', 'RAGGED_ROW', 'line 3');
    const faulty = failing('SendMessageBatchCommand');
    try {
      const result = await redriveDlq(faulty.sqs, { dlqUrl: pipeline.dlqUrl, destinationUrl: pipeline.queueUrl });
      expect(result).to.deep.include({ moved: 0, failed: 1 });
      expect(result.entries[0]!.error).to.match(/^not sent, still in the DLQ: injected/);
    } finally {
      faulty.destroy();
    }
    expect(await depthOf(pipeline.queueUrl)).to.deep.equal({ visible: 0, inFlight: 0 });
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 1, inFlight: 0 });
  });

  it('--rate spreads the moves out, and messages skipped meanwhile stay hidden until the end, then return', async () => {
    const pipeline = await newPipeline('dlq-rate');
    await deadLetterObject(pipeline, 'keep/0.csv', 'SCHEMA_VIOLATION', 'line 2');
    for (let i = 1; i <= 4; i++) await deadLetterObject(pipeline, `rate/${i}.csv`, 'RAGGED_ROW', 'line 3');
    const started = Date.now();
    const progress: number[] = [];
    // A 1-second hold makes the visit outlast it many times: the holds must be renewed.
    const result = await redriveDlq(clients.sqs, {
      dlqUrl: pipeline.dlqUrl,
      destinationUrl: pipeline.queueUrl,
      filter: { errorCodes: ['RAGGED_ROW'] },
      rate: 1,
      onProgress: (counts) => progress.push(counts.moved),
      browse: { holdSeconds: 1 },
    });
    const seconds = (Date.now() - started) / 1000;
    expect(result).to.deep.include({ moved: 4, skipped: 1, failed: 0, stillHidden: 0 });
    // Four messages at one a second: the first goes at once, the last three seconds later.
    expect(seconds).to.be.at.least(2.9);
    expect(progress.filter((moved, i) => moved !== progress[i - 1])).to.deep.equal([1, 2, 3, 4]);
    expect(keysIn(await drain(pipeline.queueUrl))).to.deep.equal(['rate/1.csv', 'rate/2.csv', 'rate/3.csv', 'rate/4.csv']);
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 1, inFlight: 0 });
  });

  it('an interrupted redrive stops after the message in hand and leaves the rest in the DLQ, visible', async () => {
    const pipeline = await newPipeline('dlq-stop');
    for (let i = 1; i <= 3; i++) await deadLetterObject(pipeline, `stop/${i}.csv`, 'RAGGED_ROW', 'line 3');
    const controller = new AbortController();
    const result = await redriveDlq(clients.sqs, {
      dlqUrl: pipeline.dlqUrl,
      destinationUrl: pipeline.queueUrl,
      rate: 1,
      signal: controller.signal,
      // What Ctrl-C does in the CLI, as soon as the first message has moved.
      onProgress: (counts) => counts.moved === 1 && controller.abort(),
    });
    expect(result).to.deep.include({ moved: 1, failed: 0, interrupted: true });
    expect(await drain(pipeline.queueUrl)).to.have.length(1);
    expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 2, inFlight: 0 });
  });

  it('redrive without --to asks for one when no queue uses the DLQ', async () => {
    const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('dlq-orphan') }));
    const { error } = await runCli(['redrive', '--dlq', QueueUrl!, '--yes']);
    expect(error?.message).to.equal(`no queue names ${QueueUrl} in its RedrivePolicy, so there is no default destination: give --to URL`);
  });

  // ---- the whole story, with the real service ----

  it('a malformed CSV is dead-lettered by the service; once the file is fixed, redrive puts it back and the service converts it', async function () {
    this.timeout(120_000);
    const pipeline = await newPipeline('dlq-story', 5);
    const service = await startServiceProcess({
      QUEUE_URL: pipeline.queueUrl,
      DLQ_URL: pipeline.dlqUrl,
      OUTPUT_BUCKET: pipeline.outputBucket,
      AWS_ENDPOINT_URL: emulator.endpoint,
      METRICS_ENABLED: 'false',
      WORKER_THREADS: '1',
      CONCURRENCY: '2',
      BATCH_SIZE: '1',
    });
    try {
      const key = 'incoming/orders.csv';
      await putObject(pipeline.inputBucket, key, 'id,amount\n1,2.5\n2,3.5,oops\n');
      await service.waitForLog((line) => line.msg === 'dead-lettered', 30_000);

      const inspected = JSON.parse((await runCli(['inspect', '--queue', pipeline.queueUrl, '--json'])).stdout);
      expect(inspected.letters).to.have.length(1);
      expect(inspected.letters[0]).to.deep.include({ code: 'RAGGED_ROW', subject: `s3://${pipeline.inputBucket}/${key}` });
      expect(inspected.letters[0].reason).to.match(/line 3: row has 3 fields, the header has 2/);

      // Redriven before the fix, it fails again: the run moves it once and does not chase it.
      const early = await redriveDlq(clients.sqs, {
        dlqUrl: pipeline.dlqUrl,
        destinationUrl: pipeline.queueUrl,
        // Keeps the visit open long enough for the service to fail the message again.
        browse: { emptyReceives: 10 },
      });
      expect(early).to.deep.include({ moved: 1, returned: 1, failed: 0 });
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 1, inFlight: 0 });

      // The fix: the producer uploads a good file under the same key.
      const fixedEtag = await putObject(pipeline.inputBucket, key, 'id,amount\n1,2.5\n2,3.5\n');
      const { stdout, exitCode } = await runCli(['redrive', '--dlq', pipeline.dlqUrl, '--yes', '--json']);
      expect(exitCode).to.equal(undefined);
      const result = JSON.parse(stdout);
      expect(result).to.deep.include({ moved: 1, failed: 0 });
      const movedAs = result.entries[0].movedAs as string;

      // The fixed file's own notification converts it; the redriven message announces the bad
      // version, which no longer exists: it is acknowledged as superseded, not dead-lettered again.
      const converted = await service.waitForLog((line) => line.key === key && line.msg === 'converted', 30_000);
      expect(converted).to.deep.include({ key, rows: 2 });
      const superseded = await service.waitForLog((line) => line.messageId === movedAs && line.outcome === 'superseded', 30_000);
      expect(superseded.key).to.equal(key);
      for (const output of ['parquet/incoming/orders.parquet', 'avro/incoming/orders.avro']) {
        const head = await clients.s3.send(new HeadObjectCommand({ Bucket: pipeline.outputBucket, Key: output }));
        expect(head.ContentLength).to.be.greaterThan(0);
        expect(head.Metadata?.['source-etag']).to.equal(fixedEtag);
      }
      expect(await depthOf(pipeline.dlqUrl)).to.deep.equal({ visible: 0, inFlight: 0 });
    } finally {
      await service.stop();
    }
  });
});
