import { expect } from 'chai';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { runBackfill, type BackfillOptions } from '../../src/backfill/run.js';
import type { Verdict } from '../../src/backfill/plan.js';
import { outputKeysFor, type OutputLayout } from '../../src/config/key-template.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

const FORMATS = [
  { name: 'parquet', extension: 'parquet' },
  { name: 'avro', extension: 'avro' },
];

describe('backfill runs (dry, against the emulator)', function () {
  this.timeout(60_000);
  let clients: AwsClients;

  before(async () => {
    clients = createAwsClients({ endpoint: (await sharedEmulator()).endpoint });
  });
  after(() => clients?.destroy());

  async function bucket(name: string): Promise<string> {
    const created = uniqueName(name);
    await clients.s3.send(new CreateBucketCommand({ Bucket: created }));
    return created;
  }

  async function put(bucketName: string, key: string, body: string, metadata?: Record<string, string>): Promise<string> {
    return (await clients.s3.send(new PutObjectCommand({ Bucket: bucketName, Key: key, Body: body, ...(metadata ? { Metadata: metadata } : {}) }))).ETag!;
  }

  const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1_100));

  async function dryRun(options: Omit<BackfillOptions, 's3' | 'region' | 'dryRun' | 'onWouldEnqueue'>) {
    const would: [string, Verdict][] = [];
    const report = await runBackfill({ ...options, s3: clients.s3, region: 'us-east-1', dryRun: true, onWouldEnqueue: (object, verdict) => would.push([object.key, verdict]) });
    return { report, would };
  }

  it('stays right when the template puts outputs out of the input’s order: those outputs are HEADed', async () => {
    const input = await bucket('bf-run-in');
    const output = await bucket('bf-run-out');
    // r/a.csv lists before r/a.x.csv, but r/a.x/… lists before r/a/…: the output cursor has passed it.
    const layout: OutputLayout = { prefix: '', template: '{format}/{stem}/data.{ext}', formats: FORMATS };
    const outputsFor = (key: string, etag: string) =>
      Promise.all(outputKeysFor(layout, { bucket: input, key }).map((outputKey) => put(output, outputKey, 'x', { 'source-etag': etag.replace(/"/g, '') })));

    const oldVersion = await put(input, 'r/a.x.csv', 'v,1\n1,1\n');
    await outputsFor('r/a.x.csv', oldVersion);
    await nextSecond();
    const sources = new Map<string, string>();
    for (const key of ['r/a.csv', 'r/a.x.csv', 'r/a.y.csv', 'r/a.z.csv', 'r/b.csv', 'r/notes.txt']) sources.set(key, await put(input, key, `v,2\n2,${key}\n`));
    await nextSecond();
    await outputsFor('r/a.csv', sources.get('r/a.csv')!);
    await outputsFor('r/a.y.csv', sources.get('r/a.y.csv')!);

    const { report, would } = await dryRun({ bucket: input, prefix: 'r/', outputBucket: output, layout, pageSize: 2 });
    expect(report).to.deep.include({ listed: 6, csv: 5, current: 2, missing: 2, stale: 1, enqueued: 0, failed: 0 });
    // a.x, a.y and a.z: both outputs out of order, HEADed (a.z's answer 404); a and b decided by the listing.
    expect(report.checked).to.equal(6);
    expect(would.sort()).to.deep.equal([
      ['r/a.x.csv', 'stale'],
      ['r/a.z.csv', 'missing'],
      ['r/b.csv', 'missing'],
    ]);
  });

  it('with outputs in the input bucket, counts them as listed objects, not CSV', async () => {
    const shared = await bucket('bf-run-shared');
    const layout: OutputLayout = { prefix: 'converted/', template: '{prefix}{format}/{stem}.{ext}', formats: FORMATS };
    const etag = await put(shared, 'one.csv', 'a\n1\n');
    await put(shared, 'two.csv.gz', 'not read');
    await nextSecond();
    for (const key of outputKeysFor(layout, { bucket: shared, key: 'one.csv' })) await put(shared, key, 'x', { 'source-etag': etag.replace(/"/g, '') });

    const { report, would } = await dryRun({ bucket: shared, prefix: '', outputBucket: shared, layout });
    expect(report).to.deep.include({ listed: 4, csv: 2, current: 1, missing: 1, stale: 0, checked: 0 });
    expect(would).to.deep.equal([['two.csv.gz', 'missing']]);
  });

  it('--modified-since leaves older objects out of every count but `listed` and `older`', async () => {
    const input = await bucket('bf-run-since');
    const output = await bucket('bf-run-since-out');
    const layout: OutputLayout = { prefix: '', template: '{prefix}{format}/{stem}.{ext}', formats: FORMATS };
    await put(input, 'old.csv', 'a\n1\n');
    await nextSecond();
    const since = new Date();
    await put(input, 'new.csv', 'a\n1\n');
    const { report, would } = await dryRun({ bucket: input, prefix: '', outputBucket: output, layout, modifiedSince: new Date(Math.floor(since.getTime() / 1000) * 1000) });
    expect(report).to.deep.include({ listed: 2, csv: 1, older: 1, missing: 1 });
    expect(would).to.deep.equal([['new.csv', 'missing']]);
  });
});
