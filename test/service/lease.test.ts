/**
 * A message's lease against the emulator's real SQS: heartbeats while held, one ending, every ending
 * stopping the heartbeat first, and one lease per receipt handle when SQS hands a message out twice.
 */
import { expect } from 'chai';
import pino from 'pino';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { AckBatcher } from '../../src/service/acks.js';
import { Leases, type LeaseDeps } from '../../src/service/lease.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

describe('message leases (real SQS protocol)', function () {
  this.timeout(60_000);
  let clients: AwsClients;
  /** Receipt handles of every ChangeMessageVisibility sent, with the visibility asked for. */
  let visibility: { receipt: string; seconds: number; at: number }[];

  before(async () => {
    clients = createAwsClients({ endpoint: (await sharedEmulator()).endpoint });
    visibility = [];
    clients.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ChangeMessageVisibilityCommand') {
          const input = args.input as { ReceiptHandle: string; VisibilityTimeout: number };
          visibility.push({ receipt: input.ReceiptHandle, seconds: input.VisibilityTimeout, at: Date.now() });
        }
        return next(args);
      },
      { step: 'initialize', name: 'watch-visibility' },
    );
  });
  after(() => clients?.destroy());

  async function queueWithOne(visibilityTimeout = 30): Promise<{ url: string; dlq: string }> {
    const url = (await clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('lease'), Attributes: { VisibilityTimeout: String(visibilityTimeout) } }))).QueueUrl!;
    const dlq = (await clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('lease-dlq') }))).QueueUrl!;
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"Records":[]}' }));
    return { url, dlq };
  }

  async function receive(url: string, visibilityTimeout?: number): Promise<Message> {
    for (;;) {
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, WaitTimeSeconds: 1, ...(visibilityTimeout ? { VisibilityTimeout: visibilityTimeout } : {}), MessageSystemAttributeNames: ['ApproximateReceiveCount'], MessageAttributeNames: ['All'] }),
      );
      if (Messages[0]) return Messages[0];
    }
  }

  async function counts(url: string): Promise<{ visible: number; hidden: number }> {
    const { Attributes = {} } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return { visible: Number(Attributes.ApproximateNumberOfMessages), hidden: Number(Attributes.ApproximateNumberOfMessagesNotVisible) };
  }

  /** Leases on `url`; `acks.close()` sends the deletes their endings queued. */
  function leasesFor(url: string, dlq: string, logger = pino({ level: 'silent' })): Leases & { acks: AckBatcher } {
    const acks = new AckBatcher(clients.sqs, url, logger, 5);
    const deps: LeaseDeps = { sqs: clients.sqs, queueUrl: url, dlqUrl: dlq, acks, logger, heartbeat: { intervalSeconds: 1, visibilityTimeout: 30 } };
    return Object.assign(new Leases(deps), { acks });
  }

  it('heartbeats while held; a release stops the heartbeat first, so nothing hides the message again', async () => {
    const { url, dlq } = await queueWithOne();
    const leases = leasesFor(url, dlq);
    const lease = leases.take(await receive(url));
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    const beats = visibility.filter((v) => v.receipt === lease.receiptHandle && v.seconds === 30).length;
    expect(beats, 'heartbeats in 2.3 s at 1 s').to.be.at.least(2);
    expect(await lease.end({ kind: 'release' })).to.equal('released');
    const releasedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(visibility.filter((v) => v.receipt === lease.receiptHandle && v.at > releasedAt), 'calls after the release').to.deep.equal([]);
    expect(await counts(url)).to.deep.equal({ visible: 1, hidden: 0 });
    expect(leases.size).to.equal(0);
  });

  it('a message received twice at once is two leases, by receipt handle: ending one stops only its own heartbeat', async () => {
    const { url, dlq } = await queueWithOne(1);
    const leases = leasesFor(url, dlq);
    const first = leases.take(await receive(url, 1));
    await first.end({ kind: 'retry', delaySeconds: 0, failure: { kind: 'transient', code: 'X', message: 'x' }, object: { bucket: 'b', key: 'k' } });
    // The message comes back with a new receipt handle while a lease for the old one could still run.
    const message = await receive(url, 1);
    const again = leases.take(message);
    const stale = leases.take({ ...message, ReceiptHandle: `${message.ReceiptHandle}-copy` });
    expect(leases.size).to.equal(2);
    await stale.end({ kind: 'release' });
    expect(leases.size, 'the other lease is still held').to.equal(1);
    const since = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(visibility.some((v) => v.receipt === again.receiptHandle && v.at > since), 'the remaining lease still heartbeats').to.equal(true);
    expect(visibility.filter((v) => v.receipt === stale.receiptHandle && v.at > since + 100)).to.deep.equal([]);
    expect(await again.end({ kind: 'ack' })).to.equal('deleted');
    await leases.acks.close();
    expect(await counts(url)).to.deep.equal({ visible: 0, hidden: 0 });
  });

  it('ends once: a second ending is refused and logged, and changes nothing', async () => {
    const { url, dlq } = await queueWithOne();
    const lines: { msg: string }[] = [];
    const leases = leasesFor(url, dlq, pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) }));
    const lease = leases.take(await receive(url));
    expect(await lease.end({ kind: 'ack' })).to.equal('deleted');
    expect(await lease.end({ kind: 'release' })).to.equal('deleted');
    expect(lines.map((line) => line.msg)).to.deep.equal(['a message lease was ended twice; the second ending is ignored']);
    await leases.acks.close();
    expect(await counts(url)).to.deep.equal({ visible: 0, hidden: 0 });
  });

  it('dead-letters: the original body goes to the DLQ with the reason, then the message is deleted; a failed send keeps it', async () => {
    const { url, dlq } = await queueWithOne();
    const leases = leasesFor(url, dlq);
    const failure = { kind: 'permanent' as const, code: 'RAGGED_ROW', message: 's3://b/k.csv: line 3 has 2 fields, the header 3' };
    expect(await leases.take(await receive(url)).end({ kind: 'dead-letter', failure })).to.equal('dead-lettered');
    await leases.acks.close();
    expect(await counts(url)).to.deep.equal({ visible: 0, hidden: 0 });
    const dead = await receive(dlq);
    expect(dead.Body).to.equal('{"Records":[]}');
    expect(dead.MessageAttributes?.['error-code']?.StringValue).to.equal('RAGGED_ROW');
    expect(dead.MessageAttributes?.['error-message']?.StringValue).to.equal(failure.message);

    // A DLQ that cannot be written: the message is not deleted, and comes back.
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'second' }));
    const broken = leasesFor(url, `${dlq}-missing`);
    expect(await broken.take(await receive(url)).end({ kind: 'dead-letter', failure })).to.equal('kept');
    expect((await counts(url)).hidden).to.equal(1);
  });
});
