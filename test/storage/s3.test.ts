/**
 * S3Store against the emulator under the concurrency the service runs at: every call goes to the
 * bucket it names (issue 16: a caching SDK client once sent half of them to another bucket), and a
 * 404 is confirmed before a file is given up as deleted.
 */
import { expect } from 'chai';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { text } from 'node:stream/consumers';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { ObjectGoneError, TransientError } from '../../src/errors.js';
import { S3Store } from '../../src/storage/s3.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

describe('S3Store: every call goes to the bucket it names', function () {
  this.timeout(120_000);
  const KEYS = 100;
  let clients: AwsClients;
  let endpoint: string;
  let buckets: string[];

  before(async () => {
    endpoint = (await sharedEmulator()).endpoint;
    clients = createAwsClients({ endpoint, concurrency: 64 });
    buckets = [uniqueName('s3store-a'), uniqueName('s3store-b')];
    for (const bucket of buckets) {
      await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      // The same keys in both buckets, with bodies that say where they live.
      await inBatches(range(KEYS), 25, (i) =>
        clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `same/key-${i}.csv`, Body: `${bucket},${i}\n` })),
      );
    }
  });

  after(() => clients?.destroy());

  it('200 concurrent GETs alternating between two buckets with the same keys each read their own bucket, five rounds over', async () => {
    const stores = buckets.map((bucket) => S3Store.forBucket(clients, bucket));
    let wrong = 0;
    for (let round = 0; round < 5; round++) {
      const reads = range(200).map(async (n) => {
        const b = n % 2;
        const i = Math.floor(n / 2) % KEYS;
        const body = await text((await stores[b]!.get(`same/key-${i}.csv`)).body);
        if (body !== `${buckets[b]},${i}\n`) wrong++;
      });
      await Promise.all(reads);
    }
    expect(wrong, 'bodies read from the wrong bucket').to.equal(0);
  });

  it('GETs, HEADs and PUTs of different keys and buckets at once never mix buckets or keys', async () => {
    const stores = buckets.map((bucket) => S3Store.forBucket(clients, bucket));
    const problems: string[] = [];
    await Promise.all(
      range(300).map(async (n) => {
        const b = n % 2;
        const store = stores[b]!;
        const i = n % KEYS;
        if (n % 3 === 0) {
          const head = await store.head(`same/key-${i}.csv`);
          if (head?.size !== `${buckets[b]},${i}\n`.length) problems.push(`HEAD ${b}/${i}: ${head?.size}`);
        } else if (n % 3 === 1) {
          const body = await text((await store.get(`same/key-${i}.csv`)).body);
          if (body !== `${buckets[b]},${i}\n`) problems.push(`GET ${b}/${i}: ${body}`);
        } else {
          const pending = await store.put(`written/${n}.txt`, { contentType: 'text/plain' });
          await pending.write(Buffer.from(`${buckets[b]}:${n}`));
          await pending.commit();
        }
      }),
    );
    expect(problems).to.deep.equal([]);
    // Every PUT landed in the bucket its store serves, under its own key.
    for (const n of range(300).filter((k) => k % 3 === 2)) {
      const b = n % 2;
      expect(await text((await stores[b]!.get(`written/${n}.txt`)).body)).to.equal(`${buckets[b]}:${n}`);
      expect(await stores[1 - b]!.head(`written/${n}.txt`)).to.equal(undefined);
    }
  });

  it("a bucket's caching client refuses a call for another bucket instead of sending it", async () => {
    const client = clients.s3ForBucket(buckets[0]!);
    let error: unknown;
    try {
      await client.send(new PutObjectCommand({ Bucket: buckets[1], Key: 'refused.txt', Body: 'x' }));
    } catch (caught) {
      error = caught;
    }
    expect((error as Error)?.message).to.include(`serves s3://${buckets[0]} only`);
    expect(await S3Store.forBucket(clients, buckets[1]!).head('refused.txt')).to.equal(undefined);
    expect(clients.s3ForBucket(buckets[0]!)).to.equal(client);
  });

  it('a 404 that a HEAD of the same bucket and key contradicts is retried later, not given up as gone', async () => {
    // A client that sends every GET to the other bucket: the failure issue 16 found, made certain.
    const misrouting = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
    misrouting.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') (args.input as { Bucket: string }).Bucket = buckets[1]!;
        return next(args);
      },
      { step: 'initialize', name: 'misroute-gets' },
    );
    const pending = await S3Store.forBucket(clients, buckets[0]!).put('only-in-a.csv', { contentType: 'text/csv' });
    await pending.write(Buffer.from('a,b\n1,2\n'));
    await pending.commit();
    try {
      const store = new S3Store(misrouting, buckets[0]!, clients.s3);
      let error: unknown;
      try {
        await store.get('only-in-a.csv');
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(TransientError);
      expect((error as TransientError).code).to.equal('GONE_UNCONFIRMED');
      expect((error as Error).message).to.include(`s3://${buckets[0]}/only-in-a.csv`);
    } finally {
      misrouting.destroy();
    }
  });

  it('a key that GET and the confirming HEAD both miss is gone, and the message names the bucket and key asked', async () => {
    let error: unknown;
    try {
      await S3Store.forBucket(clients, buckets[0]!).get('never/written.csv');
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(ObjectGoneError);
    expect((error as Error).message).to.include(`s3://${buckets[0]}/never/written.csv`);
  });
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}
