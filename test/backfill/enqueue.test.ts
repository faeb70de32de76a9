import { expect } from 'chai';
import { CreateQueueCommand, ReceiveMessageCommand, DeleteMessageBatchCommand } from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { Enqueuer, type EnqueueFailure } from '../../src/backfill/enqueue.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';
import { startBatchProxy, type BatchProxy } from '../support/sqs-batch-proxy.js';

describe('backfill: sending notifications ten to a batch (through a proxy in front of the emulator)', function () {
  this.timeout(60_000);
  let direct: AwsClients;
  let proxied: AwsClients;
  let proxy: BatchProxy;

  before(async () => {
    const emulator = await sharedEmulator();
    direct = createAwsClients({ endpoint: emulator.endpoint });
    proxy = await startBatchProxy(emulator.endpoint);
    proxied = createAwsClients({ endpoint: proxy.endpoint });
  });

  after(async () => {
    direct?.destroy();
    proxied?.destroy();
    await proxy?.close();
  });

  async function newQueue(): Promise<string> {
    const { QueueUrl } = await direct.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('bf-enqueue') }));
    return QueueUrl!;
  }

  /** Every body on the queue, received and deleted. */
  async function drain(queueUrl: string, expected: number): Promise<string[]> {
    const bodies: string[] = [];
    // Until `expected` arrived and one more receive came back empty (nothing came twice), or 5 s of nothing.
    for (let empty = 0, done = false; !done && empty < 5; ) {
      const { Messages = [] } = await direct.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      if (Messages.length === 0) {
        empty += 1;
        done = bodies.length >= expected;
      }
      bodies.push(...Messages.map((m) => m.Body!));
      if (Messages.length > 0) {
        await direct.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    }
    return bodies.sort();
  }

  async function send(queueUrl: string, bodies: string[], options: { rate?: number } = {}) {
    let sent = 0;
    const failures: EnqueueFailure[] = [];
    const enqueuer = new Enqueuer({
      sqs: proxied.sqs,
      queueUrl,
      rate: options.rate,
      retryBaseMs: 20,
      onSent: (count) => (sent += count),
      onFailed: (failure) => failures.push(failure),
    });
    for (const body of bodies) await enqueuer.add({ key: body, body });
    await enqueuer.finish();
    return { sent, failures };
  }

  const bodiesFor = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(3, '0')}`);

  it('sends ten to a SendMessageBatch and every message arrives once', async () => {
    const queueUrl = await newQueue();
    const before = proxy.delivered.length;
    const bodies = bodiesFor('plain', 25);
    expect(await send(queueUrl, bodies)).to.deep.equal({ sent: 25, failures: [] });
    expect(proxy.delivered.slice(before).map((batch) => batch.entries.length).sort()).to.deep.equal([10, 10, 5]);
    expect(await drain(queueUrl, 25)).to.deep.equal(bodies);
  });

  it('sends an entry SQS reported as failed again, and it arrives', async () => {
    const queueUrl = await newQueue();
    proxy.failEntries((body) => body === 'once-007', 1);
    const bodies = bodiesFor('once', 12);
    expect(await send(queueUrl, bodies)).to.deep.equal({ sent: 12, failures: [] });
    expect(proxy.refused.get('once-007')).to.equal(1);
    expect(await drain(queueUrl, 12)).to.deep.equal(bodies);
  });

  it('reports an entry that keeps failing, after four sends, with SQS’s reason, and delivers the rest', async () => {
    const queueUrl = await newQueue();
    proxy.failEntries((body) => body === 'always-003');
    const bodies = bodiesFor('always', 12);
    const result = await send(queueUrl, bodies);
    expect(result.sent).to.equal(11);
    expect(result.failures).to.deep.equal([{ key: 'always-003', error: 'InternalError: injected by the test proxy' }]);
    expect(proxy.refused.get('always-003')).to.equal(4);
    expect(await drain(queueUrl, 12)).to.deep.equal(bodies.filter((body) => body !== 'always-003'));
  });

  it('retries a throttled SendMessageBatch beyond the SDK’s own attempts, with backoff', async () => {
    const queueUrl = await newQueue();
    const callsBefore = proxy.calls.SendMessageBatch ?? 0;
    // The SDK tries three times; five throttles in a row need the backfill's own retries too.
    proxy.throttleSends(5);
    const bodies = bodiesFor('throttled', 3);
    expect(await send(queueUrl, bodies)).to.deep.equal({ sent: 3, failures: [] });
    expect((proxy.calls.SendMessageBatch ?? 0) - callsBefore).to.equal(6);
    expect(await drain(queueUrl, 3)).to.deep.equal(bodies);
  });

  it('keeps to --rate: at 10 a second, 25 messages go in batches of at most 10 spread over two seconds', async () => {
    const queueUrl = await newQueue();
    const before = proxy.delivered.length;
    expect(await send(queueUrl, bodiesFor('paced', 25), { rate: 10 })).to.deep.equal({ sent: 25, failures: [] });
    const batches = proxy.delivered.slice(before);
    expect(Math.max(...batches.map((batch) => batch.entries.length))).to.be.at.most(10);
    // The pacer lets 10 go at once, the next 10 a second later, the last 5 a second after that.
    expect(batches.at(-1)!.at - batches[0]!.at).to.be.at.least(1_900);
  });

  it('stops with one line naming a queue that does not exist', async () => {
    const missing = (await newQueue()).replace(/[^/]+$/, uniqueName('bf-gone'));
    const error = await send(missing, ['x']).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).to.equal('BackfillStopped');
    expect(error?.message).to.match(new RegExp(`^queue ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist \\(`));
    expect(error?.message).not.to.include('\n');
  });
});
