/**
 * The dataset schema as `convertObject` asks for it (its `resolveSchema` hook): finds the file's
 * dataset, reads its document, applies the evolution rules and registers what changed with a
 * conditional write, re-reading and deciding again whenever another writer got there first.
 */
import { PermanentError, PreconditionFailedError, TransientError } from '../errors.js';
import type { SchemaChangeNote, SchemaResolver, WrittenSchema } from '../pipeline/convert.js';
import type { ColumnType } from '../types.js';
import type { AwsClients } from '../aws.js';
import { datasetOf, type DatasetRule } from './dataset.js';
import { InvalidSchemaDocumentError, nextDocument } from './document.js';
import { evolve, type EvolutionMode, type SchemaChange } from './evolution.js';
import type { RegistryLocation } from './location.js';
import { SchemaDocumentStore, type StoredDocument } from './store.js';

/** The registry settings as plain data: what a worker thread needs to build its own resolver. */
export interface SchemaRegistryConfig {
  location: RegistryLocation;
  evolution: EvolutionMode;
  dataset: DatasetRule;
}

export interface ResolverOptions {
  store: Pick<SchemaDocumentStore, 'read' | 'write' | 'uri'>;
  evolution: EvolutionMode;
  /** The dataset of a source key (see `datasetOf`); undefined: the file belongs to none. */
  datasetOf: (key: string) => string | undefined;
  /** Where the source's keys live (`s3://bucket` or a directory), to name the file in the history. */
  sourceRoot: string;
  /** SCHEMA_MAP's types for this file: they win over the registered ones, and are registered. */
  pinned?: ReadonlyMap<string, ColumnType>;
  /** Lost races before giving up for now (the message is retried later). */
  maxAttempts?: number;
  now?: () => Date;
}

/** The resolver a conversion uses under SCHEMA_REGISTRY: the registry bucket's own client, the configured rules. */
export function registryResolver(
  clients: Pick<AwsClients, 's3ForBucket'>,
  config: SchemaRegistryConfig,
  file: { sourceRoot: string; pinned?: ReadonlyMap<string, ColumnType> },
): SchemaResolver {
  return createSchemaResolver({
    store: SchemaDocumentStore.forLocation(clients, config.location),
    evolution: config.evolution,
    datasetOf: (key) => datasetOf(config.dataset, key),
    ...file,
  });
}

/** Enough for dozens of files changing one dataset at once; beyond it the message is retried later. */
const DEFAULT_MAX_ATTEMPTS = 16;
const BACKOFF_CAP_MS = 1_600;

export function createSchemaResolver(options: ResolverOptions): SchemaResolver {
  const { store, evolution } = options;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const now = options.now ?? (() => new Date());

  return async function resolveSchema({ key, schema, empty }): Promise<WrittenSchema> {
    const dataset = options.datasetOf(key);
    if (dataset === undefined) return { schema, sourceColumns: schema.columns.map((_, i) => i) };
    const file = schema.columns.map((column, i) => ({
      name: column.name,
      type: column.type,
      empty: empty[i] ?? false,
      pinned: options.pinned?.has(column.name) ?? false,
    }));
    const source = `${options.sourceRoot}/${key}`;

    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const stored = await read(dataset);
      const decision = evolve(stored?.document.columns, file, evolution);
      if (decision.outcome === 'refuse') {
        throw new PermanentError(
          'SCHEMA_MISMATCH',
          `dataset "${dataset}" (${store.uri(dataset)}), SCHEMA_EVOLUTION=${evolution}: ${decision.reason}`,
        );
      }
      // A value that does not fit its written type is the file's mismatch with its dataset.
      const result: WrittenSchema = { schema: { columns: decision.written }, sourceColumns: decision.sourceColumns, violationCode: 'SCHEMA_MISMATCH' };
      // A misfit registers nothing: pass 2 stops at the first value that does not fit and names its line.
      if (decision.outcome === 'misfit' || decision.changes.length === 0) return result;
      const document = nextDocument(stored?.document, dataset, decision.registered, decision.changes, source, now());
      try {
        await store.write(document, stored?.etag);
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        // Someone registered first: read their version and decide again, so neither change is lost.
        await sleep(Math.random() * Math.min(BACKOFF_CAP_MS, 25 * 2 ** attempt));
        continue;
      }
      return { ...result, changes: decision.changes.map((change) => noteOf(dataset, change)) };
    }
    throw new TransientError('SCHEMA_REGISTRY_BUSY', `${store.uri(dataset)} kept changing: ${maxAttempts} attempts to register this file's columns lost to other writers`);
  };

  async function read(dataset: string): Promise<StoredDocument | undefined> {
    try {
      return await store.read(dataset);
    } catch (error) {
      // A document broken by hand: no file of the dataset converts until it is fixed, each with this reason.
      if (error instanceof InvalidSchemaDocumentError) {
        throw new PermanentError('INVALID_SCHEMA_FILE', `dataset schema ${error.message}`, { cause: error });
      }
      throw error;
    }
  }
}

/** A change as the service logs and counts it. */
export function noteOf(dataset: string, change: SchemaChange): SchemaChangeNote {
  switch (change.kind) {
    case 'registered':
      return { dataset, kind: change.kind, to: change.columns.map((column) => `${column.name} ${column.type}`).join(', ') };
    case 'column-added':
      return { dataset, kind: change.kind, column: change.column, to: change.type };
    case 'type-widened':
    case 'type-pinned':
      return { dataset, kind: change.kind, column: change.column, from: change.from, to: change.to };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
