/**
 * Every setting of the service, in one list that both validates the environment at start-up and
 * generates the README table: a setting is its name, default, meaning and zod schema, nothing else.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { LevelWithSilent } from 'pino';
import { BYTE_SIZE_UNITS, parseByteSize } from './byte-size.js';
import { KEY_TEMPLATE_MEANINGS, keyTemplateProblems, type KeyTemplatePlaceholder } from './key-template.js';
import { bucketNameProblem } from './s3-names.js';
import { schemaMapSetting, type SchemaMapSetting } from './schema-map.js';
import { DATASET_RULE_FORMS, parseDatasetRule, type DatasetRule } from '../schema/dataset.js';
import { EVOLUTION_MODES, type EvolutionMode } from '../schema/evolution.js';
import { parseRegistryLocation, type RegistryLocation } from '../schema/location.js';
import { CSV_PARSERS, DEFAULT_CSV_PARSER } from '../csv/read.js';

export const CSV_ENCODINGS = ['utf-8', 'latin1'] as const;
export const DUPLICATE_CHECKS = ['redeliveries', 'always'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LevelWithSilent[];

/** The validated configuration. Durations are whole seconds, sizes whole bytes. */
export interface Settings {
  queueUrl: string;
  outputBucket: string;
  /** Unset: the service reads it from the queue's RedrivePolicy at start-up. */
  dlqUrl: string | undefined;
  outputPrefix: string;
  outputKeyTemplate: string;
  /** Lower case, de-duplicated, in the order given; names are checked against the format registry later. */
  formats: string[];
  /** Modules adding formats to the registry (see formats/plugins.ts); empty: the built-in formats only. */
  formatPlugins: string[];
  concurrency: number;
  batchSize: number;
  visibilityTimeout: number;
  heartbeatInterval: number;
  waitTimeSeconds: number;
  maxObjectBytes: number;
  workerThreads: number;
  workerHeapMb: number;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
  duplicateCheck: (typeof DUPLICATE_CHECKS)[number];
  schemaMap: SchemaMapSetting | undefined;
  /** Unset: no dataset schemas, every file keeps its own inferred types. */
  schemaRegistry: RegistryLocation | undefined;
  schemaEvolution: EvolutionMode;
  schemaDataset: DatasetRule;
  metricsEnabled: boolean;
  metricsNamespace: string;
  metricsFlushSeconds: number;
  metricsServiceName: string;
  /** 0 disables the health endpoint. */
  healthPort: number;
  healthMaxPollAgeSeconds: number;
  shutdownGraceSeconds: number;
  stopTimeoutSeconds: number;
  logLevel: LevelWithSilent;
  logPretty: boolean;
  awsEndpointUrl: string | undefined;
  awsRegion: string;
  csvParser: (typeof CSV_PARSERS)[number];
  /** Unset: detected from each file's header line. */
  csvDelimiter: ',' | ';' | '\t' | '|' | undefined;
  csvEncoding: (typeof CSV_ENCODINGS)[number];
  rowGroupSize: number;
  rowGroupBytes: number;
  tmpDir: string;
}

/** One setting: its environment variable, where it lands in `Settings`, and how it is read. */
export interface SettingDefinition<K extends keyof Settings = keyof Settings> {
  /** The environment variable. */
  readonly name: string;
  readonly key: K;
  /** `required`: no default, start-up fails without it. `optional`: may stay unset. Otherwise the default text. */
  readonly presence: 'required' | 'optional' | { default: string | (() => string) };
  /** The Default column when the value is not a fixed text: what unset means or where the default comes from. */
  readonly shownDefault?: string;
  /** One line for the README table. */
  readonly description: string;
  /** Reads the raw text; its messages complete "invalid setting NAME=…: ". */
  readonly schema: z.ZodType<NonNullable<Settings[K]>, string>;
}

function define<K extends keyof Settings>(definition: SettingDefinition<K>): SettingDefinition<K> {
  return definition;
}

// ---- how raw text is read; each message completes "invalid setting NAME=…: "

function integer(min: number, max: number) {
  const message = `must be an integer from ${min} to ${max}`;
  return z
    .string()
    .trim()
    .regex(/^\d+$/, message)
    .transform(Number)
    .pipe(z.int({ error: message }).min(min, message).max(max, message));
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };

const boolean = z
  .string()
  .trim()
  .toLowerCase()
  .refine((text) => Object.hasOwn(BOOLEAN_WORDS, text), 'must be true/false, 1/0 or yes/no')
  .transform((text) => BOOLEAN_WORDS[text]);

function oneOf<const T extends readonly [string, ...string[]]>(choices: T, aliases: Record<string, T[number]> = {}) {
  const allowed = new Set<string>(choices);
  return z
    .string()
    .trim()
    .toLowerCase()
    .transform((text, ctx) => {
      const choice = aliases[text] ?? text;
      if (allowed.has(choice)) return choice as T[number];
      ctx.addIssue({ code: 'custom', message: `must be one of ${choices.join(', ')}` });
      return z.NEVER;
    });
}

const httpUrl = z.string().trim().pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }));

const bucketName = z
  .string()
  .trim()
  .superRefine((name, ctx) => {
    const problem = bucketNameProblem(name);
    if (problem) ctx.addIssue({ code: 'custom', message: `is not a valid S3 bucket name: it ${problem}` });
  });

const formatList = z
  .string()
  .transform((text) => text.split(',').map((name) => name.trim().toLowerCase()))
  .refine((names) => names.every((name) => /^[a-z0-9-]+$/.test(name)), 'must be a comma-separated list of format names, e.g. parquet,avro')
  .transform((names) => [...new Set(names)]);

const keyTemplate = z.string().superRefine((template, ctx) => {
  for (const message of keyTemplateProblems(template)) ctx.addIssue({ code: 'custom', message });
});

const keyPrefix = z.string().refine((prefix) => !prefix.startsWith('/'), 'must not start with "/" (S3 keys have no leading slash)');

const byteSize = z.string().transform((text, ctx) => {
  const bytes = parseByteSize(text);
  if (bytes === undefined || bytes <= 0) {
    ctx.addIssue({ code: 'custom', message: `must be a positive size in bytes, optionally with a unit (${BYTE_SIZE_UNITS.join(', ')}), e.g. 512MiB` });
    return z.NEVER;
  }
  return bytes;
});

/** Runs one of the schema module's parsers, turning its Error into the setting's message. */
function parsedBy<T>(parse: (text: string) => T) {
  return z.string().transform((text, ctx) => {
    try {
      return parse(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

const DELIMITERS: Record<string, Settings['csvDelimiter']> = { ',': ',', ';': ';', '|': '|', '\t': '\t', tab: '\t', '\\t': '\t' };

// Not trimmed: a tab is whitespace.
const delimiter = z.string().transform((text, ctx) => {
  const found = DELIMITERS[text === '\t' ? text : text.trim().toLowerCase()];
  if (!found) {
    ctx.addIssue({ code: 'custom', message: 'must be one of , ; | tab' });
    return z.NEVER;
  }
  return found;
});

const metricsNamespace = z
  .string()
  .trim()
  .regex(/^[0-9A-Za-z.\-_/#: ]{1,255}$/, 'must be 1 to 255 characters of letters, digits and . - _ / # : or space')
  .refine((ns) => !ns.startsWith('AWS/'), 'must not begin with "AWS/" (reserved for AWS services)');

const dimensionValue = z.string().trim().min(1, 'must not be empty').max(1024, 'must be at most 1024 characters');

const awsRegion = z
  .string()
  .trim()
  .regex(/^[a-z]{2}(-[a-z0-9]+)+-\d+$/, 'must be an AWS region name such as us-east-1');

const absolutePath = z.string().refine((dir) => path.isAbsolute(dir), 'must be an absolute path');

const placeholders = (Object.keys(KEY_TEMPLATE_MEANINGS) as KeyTemplatePlaceholder[])
  .map((name) => `\`{${name}}\` ${KEY_TEMPLATE_MEANINGS[name]}`)
  .join(', ');

/** Every setting, in the order the README lists them. */
export const SETTING_DEFINITIONS = [
  define({
    name: 'QUEUE_URL',
    key: 'queueUrl',
    presence: 'required',
    description: 'URL of the SQS queue that receives the S3 notifications.',
    schema: httpUrl,
  }),
  define({
    name: 'OUTPUT_BUCKET',
    key: 'outputBucket',
    presence: 'required',
    description: 'S3 bucket the Parquet and Avro outputs are written to.',
    schema: bucketName,
  }),
  define({
    name: 'DLQ_URL',
    key: 'dlqUrl',
    presence: 'optional',
    shownDefault: 'read from the queue’s RedrivePolicy at start-up',
    description: 'URL of the dead-letter queue for files that cannot be converted.',
    schema: httpUrl,
  }),
  define({
    name: 'OUTPUT_PREFIX',
    key: 'outputPrefix',
    presence: { default: '' },
    description: 'Key prefix for outputs, the `{prefix}` of OUTPUT_KEY_TEMPLATE.',
    schema: keyPrefix,
  }),
  define({
    name: 'OUTPUT_KEY_TEMPLATE',
    key: 'outputKeyTemplate',
    presence: { default: '{prefix}{format}/{stem}.{ext}' },
    description: `Output key of each file; placeholders: ${placeholders}. Must contain \`{stem}\`, and \`{ext}\` or \`{format}\`.`,
    schema: keyTemplate,
  }),
  define({
    name: 'FORMATS',
    key: 'formats',
    presence: { default: 'parquet,avro' },
    description: 'Output formats, comma-separated; each must be a registered format (the built-in parquet and avro, or one FORMAT_PLUGINS adds).',
    schema: formatList,
  }),
  define({
    name: 'FORMAT_PLUGINS',
    key: 'formatPlugins',
    presence: { default: '' },
    shownDefault: 'none: the built-in formats',
    description:
      'Modules that add output formats, comma-separated: paths (absolute or relative to the working directory) or package names, each exporting a format plugin or an array of them (see docs/ARCHITECTURE.md). Read by `convert` too, and by every worker thread.',
    schema: z.string().transform((text) => text.split(',').map((name) => name.trim()).filter((name) => name !== '')),
  }),
  define({
    name: 'CONCURRENCY',
    key: 'concurrency',
    presence: { default: '16' },
    description: 'Files converted at once per task (1–256).',
    schema: integer(1, 256),
  }),
  define({
    name: 'BATCH_SIZE',
    key: 'batchSize',
    presence: { default: '10' },
    description: 'Messages asked for per SQS receive (1–10).',
    schema: integer(1, 10),
  }),
  define({
    name: 'VISIBILITY_TIMEOUT',
    key: 'visibilityTimeout',
    presence: { default: '120' },
    description: 'Seconds a received message stays hidden; extended by heartbeats while its file converts (10–43200).',
    schema: integer(10, 43_200),
  }),
  define({
    name: 'HEARTBEAT_INTERVAL',
    key: 'heartbeatInterval',
    presence: { default: '30' },
    description: 'Seconds between visibility extensions of a message in progress; must be below VISIBILITY_TIMEOUT.',
    schema: integer(1, 43_199),
  }),
  define({
    name: 'WAIT_TIME_SECONDS',
    key: 'waitTimeSeconds',
    presence: { default: '20' },
    description: 'SQS long-poll wait in seconds (0–20).',
    schema: integer(0, 20),
  }),
  define({
    name: 'MAX_OBJECT_BYTES',
    key: 'maxObjectBytes',
    presence: { default: '10GiB' },
    description: `Largest source object accepted; larger ones are dead-lettered. Bytes, or with a unit: ${BYTE_SIZE_UNITS.join(', ')}.`,
    schema: byteSize,
  }),
  define({
    name: 'WORKER_THREADS',
    key: 'workerThreads',
    presence: { default: () => String(os.availableParallelism()) },
    shownDefault: 'number of CPU cores',
    description: 'Worker threads for CPU-bound conversion work (1–1024).',
    schema: integer(1, 1024),
  }),
  define({
    name: 'WORKER_HEAP_MB',
    key: 'workerHeapMb',
    presence: { default: '384' },
    description:
      'Old-generation heap limit of each worker thread in MiB (64–16384). V8 collects lazily below its limit, so this is what keeps RSS bounded; rows live in typed arrays outside this heap (ROW_GROUP_BYTES bounds them), so a file of 150 columns × 60,000 rows converts within 384, and 1 GB through the service peaked at 397 MiB RSS with the defaults in `npm run bench`.',
    schema: integer(64, 16384),
  }),
  define({
    name: 'BACKOFF_BASE_SECONDS',
    key: 'backoffBaseSeconds',
    presence: { default: '10' },
    description: 'Retry delay after a first transient failure; later retries wait longer, up to BACKOFF_MAX_SECONDS (1–43200).',
    schema: integer(1, 43_200),
  }),
  define({
    name: 'BACKOFF_MAX_SECONDS',
    key: 'backoffMaxSeconds',
    presence: { default: '900' },
    description: 'Longest retry delay; SQS allows at most 43200 (12 h). Must be at least BACKOFF_BASE_SECONDS.',
    schema: integer(1, 43_200),
  }),
  define({
    name: 'DUPLICATE_CHECK',
    key: 'duplicateCheck',
    presence: { default: 'redeliveries' },
    description:
      'When to read the outputs\' metadata (a HEAD per output) before converting, to skip a version already published: `redeliveries` (a message received before, whose earlier attempt may have published) or `always` (also first deliveries, which costs a call per output). Repeats reaching the same task are recognised in memory either way; a repeat on another task is converted again and its conditional publish writes nothing.',
    schema: oneOf(DUPLICATE_CHECKS),
  }),
  define({
    name: 'SCHEMA_MAP',
    key: 'schemaMap',
    presence: 'optional',
    shownDefault: 'none: every column type is inferred',
    description:
      'Pinned column types by source-key prefix: a JSON object `{"prefix/": "schema file"}` (path or s3:// URI), or the path or s3:// URI of a JSON file holding that object.',
    schema: schemaMapSetting,
  }),
  define({
    name: 'SCHEMA_REGISTRY',
    key: 'schemaRegistry',
    presence: 'optional',
    shownDefault: 'none: each file keeps the types inferred from it',
    description:
      'Keeps one schema per dataset as a JSON document under `s3://bucket/prefix/`: later files are written with the registered column types and order (see Dataset schemas).',
    schema: parsedBy(parseRegistryLocation),
  }),
  define({
    name: 'SCHEMA_EVOLUTION',
    key: 'schemaEvolution',
    presence: { default: 'add-columns' },
    description:
      'What a file that does not fit its dataset\'s schema does: `add-columns` (new columns are registered; a value that fits no registered type dead-letters the file as SCHEMA_MISMATCH), `widen` (also int64 → double, date → timestamp, any → string, for later files too) or `strict` (any new or missing column dead-letters too).',
    schema: oneOf(EVOLUTION_MODES),
  }),
  define({
    name: 'SCHEMA_DATASET',
    key: 'schemaDataset',
    presence: { default: 'folder' },
    description: `Which keys share a dataset schema: ${DATASET_RULE_FORMS}. \`folder\`: the key's folder; \`depth:1\`: its first folder; \`regex:\`: the first capture group (or the whole match); a key it does not match belongs to no dataset.`,
    schema: parsedBy(parseDatasetRule),
  }),
  define({
    name: 'METRICS_ENABLED',
    key: 'metricsEnabled',
    presence: { default: 'true' },
    description: 'Send metrics to CloudWatch (true/false, 1/0, yes/no).',
    schema: boolean,
  }),
  define({
    name: 'METRICS_NAMESPACE',
    key: 'metricsNamespace',
    presence: { default: 'S3CsvConverter' },
    description: 'CloudWatch namespace of the metrics.',
    schema: metricsNamespace,
  }),
  define({
    name: 'METRICS_FLUSH_SECONDS',
    key: 'metricsFlushSeconds',
    presence: { default: '60' },
    description: 'Seconds between metric sends (1–3600).',
    schema: integer(1, 3600),
  }),
  define({
    name: 'METRICS_SERVICE_NAME',
    key: 'metricsServiceName',
    presence: { default: 's3-csv-converter' },
    description: 'Value of the `Service` dimension on every metric.',
    schema: dimensionValue,
  }),
  define({
    name: 'HEALTH_PORT',
    key: 'healthPort',
    presence: { default: '8080' },
    description: 'Port of the HTTP health endpoint; 0 disables it.',
    schema: integer(0, 65_535),
  }),
  define({
    name: 'HEALTH_MAX_POLL_AGE_SECONDS',
    key: 'healthMaxPollAgeSeconds',
    presence: { default: '60' },
    description: 'The task reports unhealthy when its last SQS poll is older than this; must exceed WAIT_TIME_SECONDS (1–86400).',
    schema: integer(1, 86_400),
  }),
  define({
    name: 'SHUTDOWN_GRACE_SECONDS',
    key: 'shutdownGraceSeconds',
    presence: { default: '25' },
    description: 'After SIGTERM, seconds to let files in progress finish before releasing them; keep below the ECS stopTimeout (0–3600).',
    schema: integer(0, 3600),
  }),
  define({
    name: 'STOP_TIMEOUT_SECONDS',
    key: 'stopTimeoutSeconds',
    presence: { default: '45' },
    description:
      'The container\'s stop timeout (ECS `stopTimeout`): after SIGTERM the service exits within it, metrics sent, waiting for no publish past it (10–120).',
    schema: integer(10, 120),
  }),
  define({
    name: 'LOG_LEVEL',
    key: 'logLevel',
    presence: { default: 'info' },
    description: `Log level: ${LOG_LEVELS.join(', ')}.`,
    schema: oneOf(LOG_LEVELS),
  }),
  define({
    name: 'LOG_PRETTY',
    key: 'logPretty',
    presence: { default: () => String(Boolean(process.stdout.isTTY)) },
    shownDefault: '`true` when stdout is a terminal',
    description: 'Human-readable logs instead of JSON lines.',
    schema: boolean,
  }),
  define({
    name: 'AWS_ENDPOINT_URL',
    key: 'awsEndpointUrl',
    presence: 'optional',
    shownDefault: 'the AWS endpoints',
    description: 'Endpoint for every AWS service, e.g. an emulator.',
    schema: httpUrl,
  }),
  define({
    name: 'AWS_REGION',
    key: 'awsRegion',
    presence: { default: 'us-east-1' },
    description: 'AWS region of the clients.',
    schema: awsRegion,
  }),
  define({
    name: 'CSV_PARSER',
    key: 'csvParser',
    presence: { default: DEFAULT_CSV_PARSER },
    description: `CSV parser: ${CSV_PARSERS.join(', ')}. papaparse is the fastest that passes every reading test (see README, Benchmarks).`,
    schema: oneOf(CSV_PARSERS),
  }),
  define({
    name: 'CSV_DELIMITER',
    key: 'csvDelimiter',
    presence: 'optional',
    shownDefault: 'detected from each file’s header line',
    description: 'Field delimiter: `,` `;` `|` or `tab`.',
    schema: delimiter,
  }),
  define({
    name: 'CSV_ENCODING',
    key: 'csvEncoding',
    presence: { default: 'utf-8' },
    description: `Text encoding of the CSV files: ${CSV_ENCODINGS.join(', ')}.`,
    schema: oneOf(CSV_ENCODINGS, { utf8: 'utf-8' }),
  }),
  define({
    name: 'ROW_GROUP_SIZE',
    key: 'rowGroupSize',
    presence: { default: '50000' },
    description: 'Most rows per Parquet row group and per batch (1000–1000000); ROW_GROUP_BYTES may cut a group of wide rows shorter.',
    schema: integer(1000, 1_000_000),
  }),
  define({
    name: 'ROW_GROUP_BYTES',
    key: 'rowGroupBytes',
    presence: { default: '16MiB' },
    description: `Most bytes of typed values per row group and per batch (at least 1MiB), so memory follows the bytes of a row, not the count: a file of 150 columns gets shorter row groups than one of 8. Bytes, or with a unit: ${BYTE_SIZE_UNITS.join(', ')}.`,
    schema: byteSize.refine((bytes) => bytes >= 1024 * 1024, 'must be at least 1MiB'),
  }),
  define({
    name: 'TMP_DIR',
    key: 'tmpDir',
    presence: { default: () => os.tmpdir() },
    shownDefault: 'the system temporary directory',
    description: 'Absolute path of the directory where the typed rows of a large file wait between its two passes.',
    schema: absolutePath,
  }),
] as const satisfies readonly SettingDefinition[];

// Fails to compile when a field of Settings has no definition.
type Undefined = Exclude<keyof Settings, (typeof SETTING_DEFINITIONS)[number]['key']>;
const everySettingDefined: [Undefined] extends [never] ? true : Undefined = true;
void everySettingDefined;

/** A setting that must agree with others; checked whenever the settings it reads are valid. */
interface CrossCheck {
  /** The setting reported as wrong. */
  readonly name: string;
  readonly reads: readonly (keyof Settings)[];
  /** Why, naming the other setting, or undefined when they agree. */
  problem(settings: Settings): string | undefined;
}

const CROSS_CHECKS: readonly CrossCheck[] = [
  {
    name: 'HEARTBEAT_INTERVAL',
    reads: ['heartbeatInterval', 'visibilityTimeout'],
    problem: (s) =>
      s.heartbeatInterval < s.visibilityTimeout ? undefined : `must be below VISIBILITY_TIMEOUT (${s.visibilityTimeout})`,
  },
  {
    name: 'BACKOFF_BASE_SECONDS',
    reads: ['backoffBaseSeconds', 'backoffMaxSeconds'],
    problem: (s) =>
      s.backoffBaseSeconds <= s.backoffMaxSeconds ? undefined : `must not exceed BACKOFF_MAX_SECONDS (${s.backoffMaxSeconds})`,
  },
  {
    // What is cut short at the end of the grace period needs time to wind down, and metrics to be sent.
    name: 'SHUTDOWN_GRACE_SECONDS',
    reads: ['shutdownGraceSeconds', 'stopTimeoutSeconds'],
    problem: (s) =>
      s.shutdownGraceSeconds + 10 <= s.stopTimeoutSeconds ? undefined : `must be at least 10 below STOP_TIMEOUT_SECONDS (${s.stopTimeoutSeconds})`,
  },
  {
    // A long poll legitimately lasts WAIT_TIME_SECONDS: a smaller limit would flap the health check.
    name: 'HEALTH_MAX_POLL_AGE_SECONDS',
    reads: ['healthPort', 'healthMaxPollAgeSeconds', 'waitTimeSeconds'],
    problem: (s) =>
      s.healthPort === 0 || s.healthMaxPollAgeSeconds > s.waitTimeSeconds
        ? undefined
        : `must be greater than WAIT_TIME_SECONDS (${s.waitTimeSeconds})`,
  },
];

/** One thing wrong with the configuration. */
export interface SettingProblem {
  /** The environment variable. */
  setting: string;
  /** The raw text, or undefined when the variable is unset and its default was used. */
  value: string | undefined;
  reason: string;
}

/** The configuration is unusable; `message` has one line per problem. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  constructor(readonly problems: readonly SettingProblem[]) {
    super(problems.map(describeProblem).join('\n'));
  }
}

function describeProblem({ setting, value, reason }: SettingProblem): string {
  const definition = SETTING_DEFINITIONS.find((d) => d.name === setting);
  if (value !== undefined) return `invalid setting ${setting}=${quote(value)}: ${reason}`;
  if (definition?.presence === 'required') return `missing setting ${setting}: ${reason}`;
  return `invalid setting ${setting} (unset, default ${quote(defaultText(definition))}): ${reason}`;
}

function quote(value: string): string {
  const shown = value.length > 120 ? `${value.slice(0, 117)}...` : value;
  return JSON.stringify(shown);
}

function defaultText(definition: SettingDefinition | undefined): string {
  const presence = definition?.presence;
  if (typeof presence !== 'object') return '';
  return typeof presence.default === 'function' ? presence.default() : presence.default;
}

function fieldSchema(definition: SettingDefinition): z.ZodType {
  const { presence, schema } = definition;
  if (presence === 'required') return z.string({ error: 'must be set' }).pipe(schema);
  if (presence === 'optional') return schema.optional();
  const fallback = presence.default;
  return typeof fallback === 'function' ? schema.prefault(fallback) : schema.prefault(fallback);
}

/**
 * Reads and validates every setting from `env`; unknown variables are ignored and an empty value
 * counts as unset. Throws a `SettingsError` listing every problem at once.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return readSettings(SETTING_DEFINITIONS, env) as Settings;
}

/**
 * Reads and validates only the named settings, by the same rules and with the same messages, for
 * a command that needs a few of them (`backfill`): settings it does not name are neither required
 * nor checked. A cross-check runs when every setting it reads is named.
 */
export function loadSettingsSubset<K extends keyof Settings>(keys: readonly K[], env: NodeJS.ProcessEnv = process.env): Pick<Settings, K> {
  return readSettings(
    SETTING_DEFINITIONS.filter((definition) => (keys as readonly (keyof Settings)[]).includes(definition.key)),
    env,
  ) as Pick<Settings, K>;
}

function readSettings(definitions: readonly SettingDefinition[], env: NodeJS.ProcessEnv): Partial<Settings> {
  const values: Partial<Record<keyof Settings, unknown>> = {};
  const problems: SettingProblem[] = [];
  const raw = (name: string) => (env[name] === '' ? undefined : env[name]);
  for (const definition of definitions) {
    const value = raw(definition.name);
    const result = fieldSchema(definition).safeParse(value);
    if (result.success) values[definition.key] = result.data;
    else problems.push({ setting: definition.name, value, reason: [...new Set(result.error.issues.map((i) => i.message))].join('; ') });
  }
  const settings = values as Settings;
  for (const check of CROSS_CHECKS) {
    if (!check.reads.every((key) => Object.hasOwn(values, key))) continue;
    const reason = check.problem(settings);
    if (reason) problems.push({ setting: check.name, value: raw(check.name), reason });
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return settings;
}

/**
 * FORMAT_PLUGINS alone, for code that builds the format registry before the other settings are read
 * (`convert`) or without them (worker threads). Throws a `SettingsError` naming it.
 */
export function formatPluginModules(env: NodeJS.ProcessEnv = process.env): string[] {
  const definition = SETTING_DEFINITIONS.find((d) => d.name === 'FORMAT_PLUGINS')!;
  const value = env.FORMAT_PLUGINS === '' ? undefined : env.FORMAT_PLUGINS;
  const result = fieldSchema(definition).safeParse(value);
  if (!result.success) throw new SettingsError([{ setting: 'FORMAT_PLUGINS', value, reason: result.error.issues.map((i) => i.message).join('; ') }]);
  return result.data as string[];
}

/** The default as the README shows it. */
export function describeDefault(definition: SettingDefinition): string {
  const { presence } = definition;
  if (presence === 'required') return 'required';
  if (definition.shownDefault !== undefined) return definition.shownDefault;
  if (presence === 'optional') return 'unset';
  if (typeof presence.default === 'function') return '';
  return presence.default === '' ? '(empty)' : `\`${presence.default}\``;
}
