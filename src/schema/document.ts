/**
 * The schema document of one dataset: its columns in registered order, a version counter and the
 * history of changes, as JSON a person can read and a diff can follow (fixed key order, 2-space
 * indent, one value a line).
 */
import { z } from 'zod';
import { COLUMN_TYPES, type Column } from '../types.js';
import type { SchemaChange } from './evolution.js';

/** Names the document's shape, so a later shape can be told apart. */
export const DOCUMENT_FORMAT = 's3-csv-converter/dataset-schema/1';

/** The file name of every dataset's document, under the registry prefix and the dataset's name. */
export const DOCUMENT_NAME = '_schema.json';

export interface HistoryEntry {
  version: number;
  /** ISO 8601, UTC. */
  at: string;
  /** The source file whose conversion made the change, e.g. `s3://bucket/sales/2024/a.csv`. */
  source: string;
  changes: SchemaChange[];
}

export interface SchemaDocument {
  format: typeof DOCUMENT_FORMAT;
  dataset: string;
  /** 1 when registered, one more with each change. */
  version: number;
  updatedAt: string;
  columns: Column[];
  /** Oldest first. */
  history: HistoryEntry[];
}

/** A stored document that cannot be read as one (edited by hand, or not ours). */
export class InvalidSchemaDocumentError extends Error {
  override readonly name = 'InvalidSchemaDocumentError';
}

/** Where a dataset's document lives under the registry prefix (`''` is the root folder's dataset). */
export function documentKey(prefix: string, dataset: string): string {
  return dataset === '' ? `${prefix}${DOCUMENT_NAME}` : `${prefix}${dataset}/${DOCUMENT_NAME}`;
}

/** The document after `changes`, made by converting `source` at `at`. */
export function nextDocument(
  current: SchemaDocument | undefined,
  dataset: string,
  columns: readonly Column[],
  changes: readonly SchemaChange[],
  source: string,
  at: Date,
): SchemaDocument {
  const version = (current?.version ?? 0) + 1;
  const when = at.toISOString();
  return {
    format: DOCUMENT_FORMAT,
    dataset,
    version,
    updatedAt: when,
    columns: columns.map(({ name, type }) => ({ name, type })),
    history: [...(current?.history ?? []), { version, at: when, source, changes: changes.map(canonicalChange) }],
  };
}

/** The document as stored. Keys are written in one fixed order, so two versions diff line by line. */
export function formatDocument(document: SchemaDocument): string {
  const ordered = {
    format: document.format,
    dataset: document.dataset,
    version: document.version,
    updatedAt: document.updatedAt,
    columns: document.columns.map(({ name, type }) => ({ name, type })),
    history: document.history.map((entry) => ({
      version: entry.version,
      at: entry.at,
      source: entry.source,
      changes: entry.changes.map(canonicalChange),
    })),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

function canonicalChange(change: SchemaChange): SchemaChange {
  switch (change.kind) {
    case 'registered':
      return { kind: change.kind, columns: change.columns.map(({ name, type }) => ({ name, type })) };
    case 'column-added':
      return { kind: change.kind, column: change.column, type: change.type };
    case 'type-widened':
    case 'type-pinned':
      return { kind: change.kind, column: change.column, from: change.from, to: change.to };
  }
}

const columnType = z.enum(COLUMN_TYPES);
const column = z.object({ name: z.string(), type: columnType });
const change = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('registered'), columns: z.array(column) }),
  z.object({ kind: z.literal('column-added'), column: z.string(), type: columnType }),
  z.object({ kind: z.literal('type-widened'), column: z.string(), from: columnType, to: columnType }),
  z.object({ kind: z.literal('type-pinned'), column: z.string(), from: columnType, to: columnType }),
]);
const documentSchema = z.object({
  format: z.literal(DOCUMENT_FORMAT),
  dataset: z.string(),
  version: z.int().min(1),
  updatedAt: z.string(),
  columns: z.array(column).min(1),
  history: z.array(z.object({ version: z.int().min(1), at: z.string(), source: z.string(), changes: z.array(change) })),
});

/**
 * Reads a stored document; throws an Error naming `origin` and what is wrong (a document edited by
 * hand can be broken: the service then refuses to guess the dataset's types).
 */
export function parseDocument(text: string, origin: string): SchemaDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InvalidSchemaDocumentError(`${origin} is not valid JSON (${(error as Error).message})`);
  }
  const result = documentSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'document'}: ${issue.message}`);
    throw new InvalidSchemaDocumentError(`${origin} is not a dataset schema document: ${problems.join('; ')}`);
  }
  const names = result.data.columns.map((c) => c.name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated !== undefined) throw new InvalidSchemaDocumentError(`${origin} registers column "${repeated}" twice`);
  return result.data as SchemaDocument;
}
