/** The `schema show` command: the registered dataset schemas, their columns and their history. */
import { InvalidArgumentError, type Command } from 'commander';
import type { AwsClients } from '../aws.js';
import { listDatasets, readDataset, type FoundDataset } from '../schema/browse.js';
import type { SchemaChange } from '../schema/evolution.js';
import { describeRegistryLocation, parseRegistryLocation, type RegistryLocation } from '../schema/location.js';
import { SchemaDocumentStore } from '../schema/store.js';

interface ShowFlags {
  schemaRegistry?: RegistryLocation;
  dataset?: string;
  json?: boolean;
}

export interface SchemaCommandDeps {
  clients: () => AwsClients;
  print?: (text: string) => void;
}

export function registerSchemaCommand(program: Command, deps: SchemaCommandDeps): Command {
  const print = deps.print ?? ((text: string) => void process.stdout.write(`${text}\n`));
  const schema = program.command('schema').description('dataset schemas kept under SCHEMA_REGISTRY');
  schema
    .command('show')
    .description('print the registered schemas of the datasets and their history')
    .option('--schema-registry <s3://bucket/prefix/>', 'where the schemas are kept (default: $SCHEMA_REGISTRY)', registryOption)
    .option('--dataset <name>', 'only this dataset (the root folder\'s dataset is "")')
    .option('--json', 'print the documents as JSON')
    .action(async (flags: ShowFlags) => {
      const location = flags.schemaRegistry ?? registryFromEnvironment();
      const clients = deps.clients();
      const found =
        flags.dataset === undefined
          ? await listDatasets(clients.s3, location)
          : [await readDataset(SchemaDocumentStore.forLocation(clients, location), flags.dataset)];
      const missing = found.find((entry) => !entry.document && !entry.problem);
      if (missing) throw new Error(`no schema is registered for dataset "${missing.dataset}" (${missing.uri})`);
      if (flags.json) print(JSON.stringify(found.map((entry) => entry.document ?? { dataset: entry.dataset, uri: entry.uri, problem: entry.problem }), null, 2));
      else print(found.length === 0 ? `no dataset schemas under ${describeRegistryLocation(location)}` : found.map(describeDataset).join('\n\n'));
      if (found.some((entry) => entry.problem)) process.exitCode = 1;
    });
  return schema;
}

function registryOption(text: string): RegistryLocation {
  try {
    return parseRegistryLocation(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function registryFromEnvironment(): RegistryLocation {
  const text = process.env.SCHEMA_REGISTRY;
  if (!text) throw new Error('give --schema-registry s3://bucket/prefix/ or set SCHEMA_REGISTRY');
  try {
    return parseRegistryLocation(text);
  } catch (error) {
    throw new Error(`invalid setting SCHEMA_REGISTRY=${JSON.stringify(text)}: ${(error as Error).message}`);
  }
}

/** One dataset as text: its columns in registered order, then each change, oldest first. */
export function describeDataset(entry: FoundDataset): string {
  if (!entry.document) return `dataset "${entry.dataset}": cannot be read: ${entry.problem ?? 'not registered'}`;
  const { document } = entry;
  const width = Math.max(...document.columns.map((column) => column.name.length));
  const lines = [
    `dataset "${document.dataset}"  version ${document.version}, updated ${document.updatedAt}  (${entry.uri})`,
    '  columns:',
    ...document.columns.map((column) => `    ${column.name.padEnd(width)}  ${column.type}`),
    '  history:',
  ];
  for (const change of document.history) {
    lines.push(`    v${change.version}  ${change.at}  ${change.source}`);
    for (const item of change.changes) lines.push(`        ${describeChange(item)}`);
  }
  return lines.join('\n');
}

export function describeChange(change: SchemaChange): string {
  switch (change.kind) {
    case 'registered':
      return `registered: ${change.columns.map((column) => `${column.name} ${column.type}`).join(', ')}`;
    case 'column-added':
      return `column added: ${change.column} ${change.type}`;
    case 'type-widened':
      return `type widened: ${change.column} ${change.from} → ${change.to}`;
    case 'type-pinned':
      return `type pinned by SCHEMA_MAP: ${change.column} ${change.from} → ${change.to}`;
  }
}
