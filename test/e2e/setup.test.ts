import { expect } from 'chai';
import { Command } from 'commander';
import {
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { registerSetupCommand, setupPipeline, type SetupResult } from '../../src/cli/setup.js';
import { parseNotification, type Notification } from '../../src/events/parse.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

describe('setup, against the emulator', () => {
  let clients: AwsClients;

  before(async () => {
    const emulator = await sharedEmulator();
    clients = createAwsClients({ endpoint: emulator.endpoint });
  });

  after(() => clients?.destroy());

  async function attributes(queueUrl: string): Promise<Record<string, string>> {
    const { Attributes } = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
    return Attributes ?? {};
  }

  /** Receives (and deletes) until `done` holds for what arrived, or the deadline passes. */
  async function drain(queueUrl: string, done: (seen: Notification[]) => boolean, seconds = 20): Promise<Notification[]> {
    const seen: Notification[] = [];
    const deadline = Date.now() + seconds * 1000;
    while (!done(seen) && Date.now() < deadline) {
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      for (const message of Messages as Message[]) {
        seen.push(parseNotification(message.Body ?? ''));
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
      }
    }
    return seen;
  }

  const keysIn = (seen: Notification[]) => seen.flatMap((n) => (n.kind === 'objects' ? n.objects.map((o) => o.key) : []));
  const testEventsIn = (seen: Notification[]) => seen.filter((n) => n.kind === 'test-event').length;

  describe('a pipeline set up twice', () => {
    const names = { inputBucket: uniqueName('setup-in'), outputBucket: uniqueName('setup-out'), queue: uniqueName('setup-q') };
    let first: SetupResult;
    // The same pipeline set up once: how many TestEvents one setup brings is S3's business (moto sends
    // one, LocalStack one per rule), so the twice-set-up pipeline is compared with it.
    let once: SetupResult;

    before(async () => {
      first = await setupPipeline(clients, names);
      once = await setupPipeline(clients, { inputBucket: uniqueName('once-in'), outputBucket: uniqueName('once-out'), queue: uniqueName('once-q') });
    });

    it('ends the same as when set up once, without a second TestEvent', async () => {
      const second = await setupPipeline(clients, names);
      expect(first.notificationUpdated).to.equal(true);
      expect(second).to.deep.equal({ ...first, notificationUpdated: false });
      expect(first.dlqArn).to.match(new RegExp(`:${names.queue}-dlq$`));
    });

    it('sends messages to the DLQ after 5 receives, and keeps dead letters 14 days', async () => {
      const redrive = JSON.parse((await attributes(first.queueUrl)).RedrivePolicy ?? '{}');
      expect(redrive.deadLetterTargetArn).to.equal(first.dlqArn);
      expect(Number(redrive.maxReceiveCount)).to.equal(5);
      expect((await attributes(first.dlqUrl)).MessageRetentionPeriod).to.equal(String(14 * 24 * 3600));
    });

    it('lets S3 send from the input bucket only', async () => {
      const policy = JSON.parse((await attributes(first.queueUrl)).Policy ?? '{}');
      expect(policy.Statement).to.have.length(1);
      expect(policy.Statement[0]).to.deep.include({
        Effect: 'Allow',
        Principal: { Service: 's3.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: first.queueArn,
      });
      expect(policy.Statement[0].Condition.ArnLike).to.deep.equal({ 'aws:SourceArn': `arn:aws:s3:::${names.inputBucket}` });
    });

    it('announces a CSV put as `dir/a b+c.csv` with the key decoded exactly, after the TestEvents of one setup', async () => {
      await clients.s3.send(new PutObjectCommand({ Bucket: names.inputBucket, Key: 'dir/a b+c.csv', Body: 'a,b\n1,2\n' }));
      await clients.s3.send(new PutObjectCommand({ Bucket: names.inputBucket, Key: 'é/ü;:=?&.csv.gz', Body: 'x' }));
      const seen = await drain(first.queueUrl, (s) => keysIn(s).length >= 2);
      // Messages arrive unordered: one more poll for stragglers, on both queues.
      seen.push(...(await drain(first.queueUrl, () => false, 1)));
      const seenOnce = await drain(once.queueUrl, () => false, 2);
      expect(testEventsIn(seenOnce)).to.be.at.least(1);
      expect(testEventsIn(seen), 'TestEvents of a pipeline set up twice, and once').to.equal(testEventsIn(seenOnce));
      expect(keysIn(seen).sort()).to.deep.equal(['dir/a b+c.csv', 'é/ü;:=?&.csv.gz']);
      const created = seen.flatMap((n) => (n.kind === 'objects' ? n.objects : []));
      expect(created.every((o) => o.bucket === names.inputBucket && o.eventName.startsWith('ObjectCreated:'))).to.equal(true);
    });

    it('applies a changed maxReceiveCount when run again, and keeps notification rules it does not own', async () => {
      const other = await clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('other') }));
      const otherArn = (await attributes(other.QueueUrl!)).QueueArn!;
      const { $metadata: _, ...current } = await clients.s3.send(
        new GetBucketNotificationConfigurationCommand({ Bucket: names.inputBucket }),
      );
      const foreign = { Id: 'someone-else', QueueArn: otherArn, Events: ['s3:ObjectRemoved:*' as const] };
      await clients.s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: names.inputBucket,
          NotificationConfiguration: { ...current, QueueConfigurations: [...(current.QueueConfigurations ?? []), foreign] },
        }),
      );

      const third = await setupPipeline(clients, { ...names, maxReceiveCount: 2 });
      expect(third.notificationUpdated).to.equal(false);
      expect(Number(JSON.parse((await attributes(first.queueUrl)).RedrivePolicy!).maxReceiveCount)).to.equal(2);
      const after = await clients.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: names.inputBucket }));
      expect(after.QueueConfigurations?.map((c) => c.Id).sort()).to.deep.equal([
        's3-csv-converter.csv',
        's3-csv-converter.csv.gz',
        'someone-else',
      ]);
    });
  });

  it('with suffix .csv, a .txt or .csv.gz object sends no message', async () => {
    const names = { inputBucket: uniqueName('filter-in'), outputBucket: uniqueName('filter-out'), queue: uniqueName('filter-q') };
    const { queueUrl } = await setupPipeline(clients, { ...names, suffix: '.csv' });
    for (const key of ['notes.txt', 'data.csv.gz', 'last.csv']) {
      await clients.s3.send(new PutObjectCommand({ Bucket: names.inputBucket, Key: key, Body: 'x' }));
    }
    // Events arrive unordered: wait for the CSV, then give stragglers one more poll.
    const seen = await drain(queueUrl, (s) => keysIn(s).includes('last.csv'));
    seen.push(...(await drain(queueUrl, () => false, 2)));
    expect(keysIn(seen)).to.deep.equal(['last.csv']);
  });

  it('refuses settings S3 or SQS would reject, before creating anything', async () => {
    const names = { inputBucket: uniqueName('bad-in'), outputBucket: uniqueName('bad-out'), queue: uniqueName('bad-q') };
    const failure = (options: Parameters<typeof setupPipeline>[1]) =>
      setupPipeline(clients, options).then(
        () => expect.fail('expected setup to refuse'),
        (error: Error) => error.message,
      );
    expect(await failure({ ...names, suffix: ['.csv', 'data.csv'] })).to.include('overlap');
    expect(await failure({ ...names, queue: 'events.fifo' })).to.include('FIFO');
    expect(await failure({ ...names, maxReceiveCount: 0 })).to.include('maxReceiveCount');
    expect(await failure({ ...names, dlq: names.queue })).to.include('dlq must differ');
  });

  it('the setup command prints the URLs as JSON', async () => {
    const printed: string[] = [];
    const program = new Command().exitOverride();
    registerSetupCommand(program, { clients: () => clients, print: (text) => printed.push(text) });
    const queue = uniqueName('cli-q');
    await program.parseAsync(
      ['setup', '--input-bucket', uniqueName('cli-in'), '--output-bucket', uniqueName('cli-out'), '--queue', queue, '--max-receive-count', '3', '--json'],
      { from: 'user' },
    );
    const result = JSON.parse(printed.join('\n')) as SetupResult;
    expect(result.queueUrl).to.match(new RegExp(`/${queue}$`));
    expect(result.dlqUrl).to.match(new RegExp(`/${queue}-dlq$`));
    expect(Number(JSON.parse((await attributes(result.queueUrl)).RedrivePolicy!).maxReceiveCount)).to.equal(3);
  });

  it('the setup command refuses a bad --max-receive-count before touching AWS', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
    registerSetupCommand(program, { clients: () => expect.fail('must not reach AWS') });
    let error: unknown;
    try {
      await program.parseAsync(['setup', '--input-bucket', 'i', '--output-bucket', 'o', '--queue', 'q', '--max-receive-count', 'lots'], {
        from: 'user',
      });
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).to.equal('commander.invalidArgument');
  });
});
