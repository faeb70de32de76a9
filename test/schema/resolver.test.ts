import { expect } from 'chai';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { PermanentError, TransientError } from '../../src/errors.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import { registerBuiltinFormats } from '../../src/formats/builtin.js';
import { convertObject, DEFAULT_ENGINE_OPTIONS, type ConversionSummary, type SchemaResolver } from '../../src/pipeline/convert.js';
import { datasetOf, parseDatasetRule } from '../../src/schema/dataset.js';
import { nextDocument } from '../../src/schema/document.js';
import type { EvolutionMode } from '../../src/schema/evolution.js';
import { createSchemaResolver, type ResolverOptions } from '../../src/schema/resolver.js';
import { SchemaDocumentStore } from '../../src/schema/store.js';
import { LocalStore } from '../../src/storage/local.js';
import type { ColumnType } from '../../src/types.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

const formats = registerBuiltinFormats(new FormatRegistry());

describe('dataset schema resolver: convertObject with the registry in S3 (emulator)', function () {
  this.timeout(120_000);
  let clients: AwsClients;
  let store: SchemaDocumentStore;
  let dir: string;

  before(async () => {
    const emulator = await sharedEmulator();
    clients = createAwsClients({ endpoint: emulator.endpoint });
    const bucket = uniqueName('schema-resolver');
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    store = SchemaDocumentStore.forLocation(clients, { bucket, prefix: 'schemas/' });
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-resolver-'));
  });

  after(() => clients?.destroy());

  function resolver(evolution: EvolutionMode, extra: Partial<ResolverOptions> = {}): SchemaResolver {
    return createSchemaResolver({ store, evolution, datasetOf: (key) => datasetOf({ kind: 'folder' }, key), sourceRoot: dir, ...extra });
  }

  /** Converts `csv` saved as `key` (under the test's directory) to Parquet and Avro with the resolver. */
  async function convert(key: string, csv: string, resolveSchema: SchemaResolver, pinnedTypes?: ReadonlyMap<string, ColumnType>): Promise<ConversionSummary> {
    const file = path.join(dir, key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, csv);
    const out = new LocalStore(path.join(dir, 'out'));
    const stem = key.replace(/\.csv$/, '');
    return convertObject({
      source: { store: new LocalStore(dir), key },
      outputs: [
        { format: 'parquet', store: out, key: `${stem}.parquet` },
        { format: 'avro', store: out, key: `${stem}.avro` },
      ],
      options: { ...DEFAULT_ENGINE_OPTIONS, ...(pinnedTypes ? { pinnedTypes } : {}) },
      registry: formats,
      resolveSchema,
    });
  }

  const typesOf = (summary: ConversionSummary) => summary.columns.map((column) => `${column.name}:${column.type}`).join(', ');

  it('add-columns: a value that fits no registered type fails the file as SCHEMA_MISMATCH naming line, column, value and type; nothing is registered', async () => {
    await convert('mismatch/1.csv', 'id,amount\n1,2.5\n2,3\n', resolver('add-columns'));
    const error = await convert('mismatch/2.csv', 'id,amount,extra\n3,4.5,x\n4,abc,y\n', resolver('add-columns')).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(PermanentError);
    expect((error as PermanentError).code).to.equal('SCHEMA_MISMATCH');
    expect((error as Error).message).to.equal('line 3, column "amount": "abc" is not the registered type double');
    const stored = await store.read('mismatch');
    expect(stored!.document.version).to.equal(1);
    expect(stored!.document.columns.map((c) => c.name)).to.deep.equal(['id', 'amount']);
  });

  it('strict: a new column fails the file before any row is written, naming the column, the dataset and the mode', async () => {
    await convert('strict/1.csv', 'id,amount\n1,2.5\n', resolver('strict'));
    const error = await convert('strict/2.csv', 'id,amount,region\n1,2,eu\n', resolver('strict')).catch((e: unknown) => e);
    expect((error as PermanentError).code).to.equal('SCHEMA_MISMATCH');
    expect((error as Error).message).to.match(/^dataset "strict" \(s3:\/\/.*\/schemas\/strict\/_schema\.json\), SCHEMA_EVOLUTION=strict: column "region" is not registered/);
    const same = await convert('strict/3.csv', 'amount,id\n7,1\n', resolver('strict'));
    expect(typesOf(same)).to.equal('id:int64, amount:double');
  });

  it('SCHEMA_MAP pins win: the pinned type is written and becomes the registered one', async () => {
    await convert('pins/1.csv', 'code,n\n12,1\n', resolver('add-columns'));
    const pins = new Map<string, ColumnType>([['code', 'string']]);
    const summary = await convert('pins/2.csv', 'code,n\n0012,2\n', resolver('add-columns', { pinned: pins }), pins);
    expect(typesOf(summary)).to.equal('code:string, n:int64');
    expect(summary.schemaChanges).to.deep.equal([{ dataset: 'pins', kind: 'type-pinned', column: 'code', from: 'int64', to: 'string' }]);
    expect((await store.read('pins'))!.document.columns).to.deep.equal([{ name: 'code', type: 'string' }, { name: 'n', type: 'int64' }]);
  });

  it('a key the dataset rule does not match keeps its own types and touches no document', async () => {
    const rule = parseDatasetRule('regex:^tables/([a-z]+)/');
    const summary = await convert('loose/1.csv', 'a\n1\n', resolver('strict', { datasetOf: (key) => datasetOf(rule, key) }));
    expect(typesOf(summary)).to.equal('a:int64');
    expect(summary.schemaChanges).to.equal(undefined);
    expect(await store.read('loose')).to.equal(undefined);
  });

  it('twenty files each adding a column at once: all twenty registered, each once, versions 1 to 21', async () => {
    await convert('burst/base.csv', 'id\n1\n', resolver('add-columns'));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => convert(`burst/f${i}.csv`, `id,c${String(i).padStart(2, '0')}\n1,${i}\n`, resolver('add-columns'))),
    );
    const { document } = (await store.read('burst'))!;
    const added20 = Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    expect(document.columns[0]).to.deep.equal({ name: 'id', type: 'int64' });
    expect(document.columns.slice(1).map((c) => c.name).sort()).to.deep.equal(added20);
    expect(document.version).to.equal(21);
    expect(document.history.map((entry) => entry.version)).to.deep.equal(Array.from({ length: 21 }, (_, i) => i + 1));
    const added = document.history.flatMap((entry) => entry.changes.flatMap((change) => (change.kind === 'column-added' ? [change.column] : [])));
    expect(added.sort()).to.deep.equal(added20);
    // Each file was written with at least the columns registered when it won, its own among them.
    for (const [i, summary] of results.entries()) expect(summary.columns.map((c) => c.name)).to.include.members(['id', `c${String(i).padStart(2, '0')}`]);
  });

  it('a widen and a new column racing: both land, and a file written after the widen never narrows it back', async () => {
    await convert('race/1.csv', 'id,amount\n1,2.5\n', resolver('widen'));
    const [widened, added] = await Promise.all([
      convert('race/2.csv', 'id,amount\n2,n/a\n', resolver('widen')),
      convert('race/3.csv', 'id,amount,zone\n3,1.5,eu\n', resolver('widen')),
    ]);
    expect(typesOf(widened)).to.match(/^id:int64, amount:string/);
    expect(added.columns.map((c) => c.name)).to.include('zone');
    const older = await convert('race/4.csv', 'id,amount\n4,7.25\n', resolver('widen'));
    expect(typesOf(older)).to.equal('id:int64, amount:string, zone:string');
    const { document } = (await store.read('race'))!;
    expect(document.columns).to.deep.equal([
      { name: 'id', type: 'int64' },
      { name: 'amount', type: 'string' },
      { name: 'zone', type: 'string' },
    ]);
    expect(document.version).to.equal(3);
  });

  it('a writer that loses every race gives up for now with a transient error (the message is retried later)', async () => {
    await convert('busy/1.csv', 'id\n1\n', resolver('add-columns'));
    let rival = 0;
    // Between this writer's read and its write, another writer really changes the document in S3.
    const contested: ResolverOptions['store'] = {
      uri: (dataset) => store.uri(dataset),
      write: (document, etag) => store.write(document, etag),
      async read(dataset) {
        const seen = await store.read(dataset);
        const current = (await store.read(dataset))!;
        const name = `rival${rival++}`;
        await store.write(
          nextDocument(current.document, dataset, [...current.document.columns, { name, type: 'int64' }], [{ kind: 'column-added', column: name, type: 'int64' }], 'elsewhere', new Date()),
          current.etag,
        );
        return seen;
      },
    };
    const error = await convert('busy/2.csv', 'id,mine\n1,2\n', resolver('add-columns', { store: contested, maxAttempts: 3 })).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TransientError);
    expect((error as TransientError).code).to.equal('SCHEMA_REGISTRY_BUSY');
    const { document } = (await store.read('busy'))!;
    expect(document.columns.map((c) => c.name)).to.deep.equal(['id', 'rival0', 'rival1', 'rival2']);
  });

  it('a document broken by hand fails the file as INVALID_SCHEMA_FILE naming the document', async () => {
    await clients.s3.send(new PutObjectCommand({ Bucket: store.location.bucket, Key: 'schemas/broken/_schema.json', Body: 'not json' }));
    const error = await convert('broken/1.csv', 'a\n1\n', resolver('add-columns')).catch((e: unknown) => e);
    expect((error as PermanentError).code).to.equal('INVALID_SCHEMA_FILE');
    expect((error as Error).message).to.match(/schemas\/broken\/_schema\.json is not valid JSON/);
  });
});
