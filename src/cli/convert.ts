/** The `convert` command: local paths or s3:// URIs in, one file per format out, a summary printed. */
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import type { FormatRegistry } from '../formats/registry.js';
import { convertObject, type ConversionSummary, type SchemaChangeNote, type SchemaResolver } from '../pipeline/convert.js';
import { datasetOf, DEFAULT_DATASET_RULE, parseDatasetRule, type DatasetRule } from '../schema/dataset.js';
import { EVOLUTION_MODES, type EvolutionMode } from '../schema/evolution.js';
import { parseRegistryLocation, type RegistryLocation } from '../schema/location.js';
import { createSchemaResolver } from '../schema/resolver.js';
import { SchemaDocumentStore } from '../schema/store.js';
import { isS3Uri, parseS3Uri, Stores } from '../storage/location.js';
import type { AwsClients } from '../aws.js';
import type { ColumnType } from '../types.js';
import { addEngineOptions, engineOptionsFrom, type EngineFlags } from './engine-options.js';

interface ConvertFlags extends EngineFlags {
  out: string;
  json?: boolean;
  progress?: boolean;
  schemaRegistry?: RegistryLocation;
  schemaEvolution: EvolutionMode;
  schemaDataset: DatasetRule;
  dataset?: string;
}

type Outcome = { input: string; ok: true; summary: ConversionSummary } | { input: string; ok: false; error: string; code?: string };

/** Files at least this large get a progress bar on a terminal. */
const PROGRESS_MIN_BYTES = 16 * 1024 * 1024;

/** `sales.csv` and `sales.csv.gz` both give `sales`. */
export function outputName(input: string): string {
  const base = input.startsWith('s3://') ? input.slice(input.lastIndexOf('/') + 1) : path.basename(input);
  return base.replace(/\.csv(\.gz)?$/i, '');
}

export function registerConvertCommand(program: Command, deps: { registry: FormatRegistry; clients: () => AwsClients }): void {
  const command = program
    .command('convert')
    .description('convert CSV files (local paths or s3:// URIs) to Parquet and Avro')
    .argument('<input...>', 'CSV files, optionally gzipped')
    .requiredOption('--out <dir-or-s3-prefix>', 'output directory or s3://bucket/prefix/')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'never show a progress bar')
    .option('--schema-registry <s3://bucket/prefix/>', 'keep one schema per dataset there, as the service does with SCHEMA_REGISTRY', parsedBy(parseRegistryLocation))
    .addOption(new Option('--schema-evolution <mode>', 'what a file that does not fit its dataset does (SCHEMA_EVOLUTION)').choices(EVOLUTION_MODES).default('add-columns'))
    .addOption(
      new Option('--schema-dataset <rule>', 'which inputs share a dataset: folder, depth:N or regex:PATTERN over the S3 key, or the local path as given (SCHEMA_DATASET)')
        .argParser(parsedBy(parseDatasetRule))
        .default(DEFAULT_DATASET_RULE, 'folder'),
    )
    .option('--dataset <name>', 'put every input in this dataset instead');
  addEngineOptions(command, deps.registry).action(async (inputs: string[], flags: ConvertFlags) => {
    const { formats, options } = await engineOptionsFrom(flags, deps.registry);
    const stores = new Stores(deps.clients);
    const out = stores.output(flags.out);
    const names = inputs.map(outputName);
    const duplicate = names.find((name, i) => names.indexOf(name) !== i);
    if (duplicate) command.error(`two inputs would both write "${duplicate}": convert them into different --out directories`);

    const resolverFor = schemaResolvers(flags, options.pinnedTypes, deps.clients, command);

    const showProgress = !flags.json && flags.progress !== false && Boolean(process.stdout.isTTY);
    const outcomes: Outcome[] = [];
    for (const [i, input] of inputs.entries()) {
      const bar = showProgress ? new ProgressBar(input) : undefined;
      try {
        const summary = await convertObject({
          source: stores.input(input),
          outputs: formats.map((format) => ({
            format,
            store: out.store,
            key: out.key(`${names[i]}.${deps.registry.get(format).extension}`),
          })),
          options,
          registry: deps.registry,
          ...(resolverFor ? { resolveSchema: resolverFor(input) } : {}),
          onProgress: bar && ((read, total) => bar.update(read, total)),
        });
        bar?.stop();
        outcomes.push({ input, ok: true, summary });
        if (!flags.json) process.stdout.write(describe(summary));
      } catch (error) {
        bar?.stop();
        const failure = { input, ok: false as const, error: (error as Error).message, code: (error as { code?: string }).code };
        outcomes.push(failure);
        if (!flags.json) process.stderr.write(`✗ ${input}: ${failure.error}\n`);
      }
    }
    const failed = outcomes.filter((outcome) => !outcome.ok).length;
    if (flags.json) process.stdout.write(JSON.stringify(outcomes, null, 2) + '\n');
    else process.stdout.write(`${outcomes.length - failed} converted, ${failed} failed\n`);
    process.exitCode = failed === 0 ? 0 : 1;
  });
}

/**
 * With `--schema-registry`, the resolver for each input: the same rules as the service, with the
 * dataset taken from the S3 key, or from the local path as typed (so `sales/2024/a.csv` here
 * joins the dataset `sales/2024` there), unless `--dataset` names it.
 */
function schemaResolvers(
  flags: ConvertFlags,
  pinned: ReadonlyMap<string, ColumnType> | undefined,
  clients: () => AwsClients,
  command: Command,
): ((input: string) => SchemaResolver) | undefined {
  if (!flags.schemaRegistry) {
    if (flags.dataset !== undefined) command.error('--dataset needs --schema-registry');
    return undefined;
  }
  const store = SchemaDocumentStore.forLocation(clients(), flags.schemaRegistry);
  return (input) => {
    const key = isS3Uri(input) ? parseS3Uri(input).key : input.replace(/\\/g, '/').replace(/^(\.\/)+/, '');
    const dataset = flags.dataset ?? datasetOf(flags.schemaDataset, key);
    return createSchemaResolver({
      store,
      evolution: flags.schemaEvolution,
      datasetOf: () => dataset,
      sourceRoot: isS3Uri(input) ? `s3://${parseS3Uri(input).bucket}` : path.dirname(path.resolve(input)),
      ...(pinned ? { pinned } : {}),
    });
  };
}

function parsedBy<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

/** Shown only for large files, so short runs keep a clean log. */
class ProgressBar {
  #bar: cliProgress.SingleBar | undefined;

  constructor(private readonly label: string) {}

  update(read: number, total: number | undefined): void {
    if (!this.#bar) {
      if (total === undefined || total < PROGRESS_MIN_BYTES) return;
      this.#bar = new cliProgress.SingleBar(
        { format: `${path.basename(this.label)} [{bar}] {percentage}% | {value}/{total} MB`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(Math.ceil(total / 1e6), 0);
    }
    this.#bar.update(Math.floor(read / 1e6));
  }

  stop(): void {
    this.#bar?.stop();
  }
}

function describe(summary: ConversionSummary): string {
  const outputs = summary.outputs.map((output) => `${output.format} ${formatBytes(output.bytes)}`).join(', ');
  const columns = summary.columns.map((column) => `${column.name}:${column.type}`).join(', ');
  return (
    `✓ ${summary.source}\n` +
    `  ${summary.rows} rows, ${summary.columns.length} columns, ${formatBytes(summary.bytesIn)} in → ${outputs}, ${summary.seconds.toFixed(2)} s\n` +
    `  columns: ${columns}\n` +
    (summary.schemaChanges ?? []).map((change) => `  dataset schema: ${describeChange(change)}\n`).join('') +
    summary.outputs.map((output) => `  wrote ${output.location}\n`).join('')
  );
}

function describeChange(change: SchemaChangeNote): string {
  const what = change.column === undefined ? `${change.kind} ${change.to ?? ''}` : `${change.kind} ${change.column}${change.from ? ` ${change.from} →` : ''} ${change.to ?? ''}`;
  return `"${change.dataset}" ${what.trim()}`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
