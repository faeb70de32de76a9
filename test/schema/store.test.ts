import { expect } from 'chai';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { PreconditionFailedError } from '../../src/errors.js';
import { formatDocument, nextDocument } from '../../src/schema/document.js';
import { SchemaDocumentStore } from '../../src/schema/store.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

const AT = new Date('2026-12-01T10:00:00.000Z');

describe('schema documents in S3: conditional writes against the emulator', function () {
  this.timeout(60_000);
  let clients: AwsClients;
  let bucket: string;
  let store: SchemaDocumentStore;

  before(async () => {
    const emulator = await sharedEmulator();
    clients = createAwsClients({ endpoint: emulator.endpoint });
    bucket = uniqueName('schema-store');
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    store = SchemaDocumentStore.forLocation(clients, { bucket, prefix: 'registry/' });
  });

  after(() => clients?.destroy());

  const registered = nextDocument(undefined, 'sales', [{ name: 'id', type: 'int64' }], [{ kind: 'registered', columns: [{ name: 'id', type: 'int64' }] }], 's3://in/sales/a.csv', AT);

  it('a dataset with no document reads as none; the bucket is reachable', async () => {
    expect(await store.read('nothing-here')).to.equal(undefined);
    await store.check();
  });

  it('creates a document only if there is none (If-None-Match: *): a second creator gets PreconditionFailedError', async () => {
    const etag = await store.write(registered, undefined);
    const read = await store.read('sales');
    expect(read?.etag).to.equal(etag);
    expect(read?.document).to.deep.equal(registered);
    const error = await store.write(registered, undefined).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(PreconditionFailedError);
    expect((error as Error).message).to.include(`s3://${bucket}/registry/sales/_schema.json`);
  });

  it('replaces a document only if it is still the version read (If-Match): a stale writer gets PreconditionFailedError', async () => {
    const current = (await store.read('sales'))!;
    const added = nextDocument(current.document, 'sales', [...current.document.columns, { name: 'a', type: 'string' }], [{ kind: 'column-added', column: 'a', type: 'string' }], 's3://in/sales/b.csv', AT);
    const newEtag = await store.write(added, current.etag);
    expect(newEtag).not.to.equal(current.etag);
    const stale = nextDocument(current.document, 'sales', [...current.document.columns, { name: 'b', type: 'string' }], [{ kind: 'column-added', column: 'b', type: 'string' }], 's3://in/sales/c.csv', AT);
    expect(await store.write(stale, current.etag).catch((e: unknown) => e)).to.be.instanceOf(PreconditionFailedError);
    expect((await store.read('sales'))!.document.columns.map((c) => c.name)).to.deep.equal(['id', 'a']);
  });

  it('a document edited into something else is refused with its location, not taken as empty', async () => {
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'registry/broken/_schema.json', Body: '{"columns": "id"}' }));
    const error = await store.read('broken').catch((e: unknown) => e);
    expect((error as Error).message).to.match(/registry\/broken\/_schema\.json is not a dataset schema document/);
  });

  it('is stored as the formatted document, readable with any S3 client', async () => {
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'registry/sales/_schema.json' }));
    const text = await object.Body!.transformToString();
    expect(text).to.equal(formatDocument((await store.read('sales'))!.document));
    expect(object.ContentType).to.equal('application/json');
  });

  it('a registry bucket that does not exist fails the check with its name', async () => {
    const missing = SchemaDocumentStore.forLocation(clients, { bucket: uniqueName('no-such-registry'), prefix: '' });
    const error = await missing.check().catch((e: unknown) => e);
    expect((error as Error).message).to.match(/s3:\/\/no-such-registry-.*\/ cannot be read \(NoSuchBucket/);
  });
});
