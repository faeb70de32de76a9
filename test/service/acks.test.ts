import { expect } from 'chai';
import pino from 'pino';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, type Message } from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { AckBatcher } from '../../src/service/acks.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

describe('acknowledgements: handled messages are deleted ten to a call (real SQS protocol)', function () {
  this.timeout(60_000);
  let clients: AwsClients;
  let calls: { command: string; entries: number }[];

  before(async () => {
    const { endpoint } = await sharedEmulator();
    clients = createAwsClients({ endpoint });
    calls = [];
    clients.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Entries?: unknown[] };
        calls.push({ command: context.commandName ?? '', entries: input.Entries?.length ?? 1 });
        return next(args);
      },
      { step: 'initialize', name: 'countCalls' },
    );
  });
  after(() => clients.destroy());

  async function queueWith(count: number): Promise<{ url: string; messages: Message[] }> {
    const url = (await clients.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('acks'), Attributes: { VisibilityTimeout: '60' } }))).QueueUrl!;
    for (let i = 0; i < count; i += 10) {
      const ids = Array.from({ length: Math.min(10, count - i) }, (_, j) => i + j);
      await clients.sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: ids.map((id) => ({ Id: String(id), MessageBody: `m${id}` })) }));
    }
    const messages: Message[] = [];
    while (messages.length < count) {
      const received = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      messages.push(...(received.Messages ?? []));
    }
    return { url, messages };
  }

  async function visibleAndHidden(url: string): Promise<number> {
    const { Attributes } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return Number(Attributes!.ApproximateNumberOfMessages) + Number(Attributes!.ApproximateNumberOfMessagesNotVisible);
  }

  it('deletes 23 messages with three DeleteMessageBatch calls, and each delete resolves only once its batch is done', async () => {
    const { url, messages } = await queueWith(23);
    calls.length = 0;
    const acks = new AckBatcher(clients.sqs, url, pino({ level: 'silent' }), 20);
    await Promise.all(messages.map((message) => acks.delete(message)));
    expect(calls).to.deep.equal([
      { command: 'DeleteMessageBatchCommand', entries: 10 },
      { command: 'DeleteMessageBatchCommand', entries: 10 },
      { command: 'DeleteMessageBatchCommand', entries: 3 },
    ]);
    expect(await visibleAndHidden(url)).to.equal(0);
  });

  it('close() sends the deletes still waiting for company at once, and waits for them', async () => {
    const { url, messages } = await queueWith(3);
    calls.length = 0;
    const acks = new AckBatcher(clients.sqs, url, pino({ level: 'silent' }), 60_000);
    for (const message of messages) void acks.delete(message);
    const started = Date.now();
    await acks.close();
    expect(Date.now() - started, 'not the 60 s wait for company').to.be.below(5_000);
    expect(calls).to.deep.equal([{ command: 'DeleteMessageBatchCommand', entries: 3 }]);
    expect(await visibleAndHidden(url)).to.equal(0);
  });

  it('a delete SQS refuses is logged, never thrown, and leaves the message in the queue', async () => {
    const { url, messages } = await queueWith(2);
    const lines: { msg: string; reason?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const acks = new AckBatcher(clients.sqs, url, logger, 5);
    await Promise.all([acks.delete(messages[0]!), acks.delete({ ...messages[1]!, ReceiptHandle: 'not-a-receipt-handle' })]);
    expect(lines.map((line) => line.msg)).to.deep.equal(['could not delete a handled message; it will come back as a duplicate']);
    expect(await visibleAndHidden(url)).to.equal(1);
  });
});
