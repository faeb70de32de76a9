/**
 * The publish protocol against the emulator's real S3: conditional writes decide whether a version
 * may have the outputs, so an older version never replaces a newer one's, even when they race.
 */
import { expect } from 'chai';
import { CreateBucketCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { PermanentError, PreconditionFailedError, SourceChangedError } from '../../src/errors.js';
import type { StagedOutput } from '../../src/pipeline/convert.js';
import { S3Store } from '../../src/storage/s3.js';
import { outputMetadata, recordedSource, type SourceVersion } from '../../src/versions/metadata.js';
import { versionedPublisher } from '../../src/versions/publish.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

describe('versions: the publish protocol (conditional writes, real S3 protocol)', function () {
  this.timeout(120_000);
  let clients: AwsClients;
  let input: string;
  let output: string;
  let calls: string[];

  before(async () => {
    clients = createAwsClients({ endpoint: (await sharedEmulator()).endpoint });
    input = uniqueName('publish-in');
    output = uniqueName('publish-out');
    for (const bucket of [input, output]) await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    calls = [];
    for (const bucket of [input, output]) countCalls(clients.s3ForBucket(bucket), bucket, calls);
  });
  after(() => clients?.destroy());

  const store = (bucket: string) => S3Store.forBucket(clients, bucket);

  async function upload(key: string, body: string): Promise<SourceVersion> {
    const { ETag } = await clients.s3.send(new PutObjectCommand({ Bucket: input, Key: key, Body: body }));
    return { bucket: input, key, etag: ETag! };
  }

  /** Outputs of `version` written (not yet visible) under `keys`, with `body` as their bytes. */
  async function stage(version: SourceVersion, keys: string[], body: string | Buffer): Promise<StagedOutput[]> {
    return Promise.all(
      keys.map(async (key) => {
        const pending = await store(output).put(key, { contentType: 'application/octet-stream', metadata: outputMetadata(version) });
        await pending.write(Buffer.from(body));
        return { target: { format: key.split('/')[0]!, store: store(output), key }, pending };
      }),
    );
  }

  async function publish(version: SourceVersion, keys: string[], body: string | Buffer) {
    const publisher = versionedPublisher({ version, storeFor: store });
    const sizes = await publisher(await stage(version, keys, body), { etag: version.etag });
    return { sizes, records: publisher.records };
  }

  async function holder(key: string) {
    const head = await store(output).head(key);
    return head && recordedSource(head.metadata).etag;
  }

  it('creates each output with one conditional PUT on the common path: no HEAD of the source or the outputs', async () => {
    const v1 = await upload('common/a.csv', 'v1');
    calls.length = 0;
    const { records } = await publish(v1, ['parquet/common/a.parquet', 'avro/common/a.avro'], 'out-v1');
    expect(records.map((r) => `${r.how}/${r.attempts}`)).to.deep.equal(['created/1', 'created/1']);
    expect(calls).to.deep.equal([`PutObject ${output}`, `PutObject ${output}`]);
  });

  it('replaces the outputs of an older version once the source’s HEAD says ours is current', async () => {
    const key = 'replace/a.csv';
    const outputs = ['parquet/replace/a.parquet', 'avro/replace/a.avro'];
    const v1 = await upload(key, 'v1');
    await publish(v1, outputs, 'out-v1');
    const v2 = await upload(key, 'v2');
    const { records } = await publish(v2, outputs, 'out-v2');
    expect(records.map((r) => r.how)).to.deep.equal(['replaced', 'replaced']);
    for (const k of outputs) expect(await holder(k)).to.equal(v2.etag.replace(/"/g, ''));
  });

  it('writes nothing for a version a newer one replaced: the newer version’s outputs stay', async () => {
    const key = 'stale/a.csv';
    const outputs = ['parquet/stale/a.parquet', 'avro/stale/a.avro'];
    const v1 = await upload(key, 'v1');
    const v2 = await upload(key, 'v2');
    await publish(v2, outputs, 'out-v2');
    let error: unknown;
    try {
      await publish(v1, outputs, 'out-v1');
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(SourceChangedError);
    for (const k of outputs) expect(await holder(k)).to.equal(v2.etag.replace(/"/g, ''));
  });

  it('an older version racing a newer one: the newer writes between the older’s look and its write, and the older’s If-Match fails', async () => {
    const key = 'race/a.csv';
    const out = 'parquet/race/a.parquet';
    const v0 = await upload(key, 'v0');
    await publish(v0, [out], 'out-v0');
    const v1 = await upload(key, 'v1');
    const v2Body = 'v2';
    let v2: SourceVersion | undefined;
    // Right after v1's publisher has looked at the output and confirmed the source is v1, v2 lands
    // and its own conversion publishes: the moment a check-then-act publish would overwrite it.
    const raced = (async () => {
      await untilCall(calls, `HeadObject ${input}`);
      v2 = await upload(key, v2Body);
      await publish(v2, [out], 'out-v2');
    })();
    calls.length = 0;
    const pendingV1 = stage(v1, [out], 'out-v1');
    const publisher = versionedPublisher({ version: v1, storeFor: slowAfterSourceHead(store, input, raced) });
    let error: unknown;
    try {
      await publisher(await pendingV1, { etag: v1.etag });
    } catch (caught) {
      error = caught;
    }
    await raced;
    expect(error, 'v1 found itself stale').to.be.instanceOf(SourceChangedError);
    expect(await holder(out)).to.equal(v2!.etag.replace(/"/g, ''));
  });

  it('x.csv beside x.csv.gz: the second source is refused with a reason naming both while the first exists, accepted once it is gone', async () => {
    const outputs = ['parquet/pair/x.parquet', 'avro/pair/x.avro'];
    const plain = await upload('pair/x.csv', 'plain');
    const gz = await upload('pair/x.csv.gz', 'gzipped');
    await publish(plain, outputs, 'out-plain');
    let error: unknown;
    try {
      await publish(gz, outputs, 'out-gz');
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(PermanentError);
    expect((error as PermanentError).code).to.equal('OUTPUT_CONFLICT');
    expect((error as Error).message).to.include(`s3://${input}/pair/x.csv.gz and s3://${input}/pair/x.csv both map to s3://${output}/parquet/pair/x.parquet`);
    expect((error as Error).message).to.include('Delete or rename one of the two sources');
    for (const k of outputs) expect(await holder(k)).to.equal(plain.etag.replace(/"/g, ''));
    await store(input).delete('pair/x.csv');
    const { records } = await publish(gz, outputs, 'out-gz');
    expect(records.map((r) => r.how)).to.deep.equal(['replaced', 'replaced']);
  });

  it('a large output (multipart) whose conditional commit failed is committed again with another condition, without uploading its parts again', async () => {
    const key = 'big/out.bin';
    const big = Buffer.alloc(9 * 1024 * 1024 + 123, 7);
    const existing = await store(output).put(key, { contentType: 'application/octet-stream' });
    await existing.write(Buffer.from('old'));
    await existing.commit();
    const current = (await store(output).head(key))!.etag!;
    const pending = await store(output).put(key, { contentType: 'application/octet-stream' });
    calls.length = 0;
    // Written as the engine writes: a part goes up once 8 MiB are buffered, the rest at commit.
    for (let at = 0; at < big.byteLength; at += 1024 * 1024) await pending.write(big.subarray(at, at + 1024 * 1024));
    let error: unknown;
    try {
      await pending.commit({ ifNoneMatch: '*' });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(PreconditionFailedError);
    const partsBefore = calls.filter((c) => c.startsWith('UploadPart')).length;
    expect(partsBefore, 'parts uploaded').to.equal(2);
    expect(await pending.commit({ ifMatch: current })).to.equal(big.byteLength);
    expect(calls.filter((c) => c.startsWith('UploadPart')).length, 'parts uploaded again').to.equal(partsBefore);
    expect((await store(output).head(key))!.size).to.equal(big.byteLength);
  });

  it('aborting a multipart output after a failed condition leaves no upload behind', async () => {
    const key = 'big/aborted.bin';
    const existing = await store(output).put(key, { contentType: 'application/octet-stream' });
    await existing.write(Buffer.from('old'));
    await existing.commit();
    const pending = await store(output).put(key, { contentType: 'application/octet-stream' });
    await pending.write(Buffer.alloc(9 * 1024 * 1024, 1));
    await pending.commit({ ifNoneMatch: '*' }).catch(() => undefined);
    await pending.abort();
    const { Uploads = [] } = await clients.s3.send(new ListMultipartUploadsCommand({ Bucket: output, Prefix: key }));
    expect(Uploads).to.deep.equal([]);
    expect((await store(output).head(key))!.size).to.equal(3);
  });
});

/** Records `Command bucket` for every call a client makes. */
function countCalls(client: S3Client, bucket: string, calls: string[]): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      calls.push(`${(context.commandName ?? '').replace(/Command$/, '')} ${bucket}`);
      return result;
    },
    { step: 'initialize', name: `count-calls-${bucket}` },
  );
}

async function untilCall(calls: string[], call: string): Promise<void> {
  while (!calls.includes(call)) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** `store`, except that a HEAD in `bucket` answers only once `gate` settled. */
function slowAfterSourceHead(store: (bucket: string) => S3Store, bucket: string, gate: Promise<unknown>): (b: string) => S3Store {
  return (b) => {
    const s = store(b);
    if (b !== bucket) return s;
    return Object.assign(Object.create(s) as S3Store, {
      head: async (key: string) => {
        const answer = await s.head(key);
        await gate;
        return answer;
      },
    });
  };
}
