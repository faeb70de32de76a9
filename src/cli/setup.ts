/**
 * The `setup` command: creates, or brings up to date, everything the service needs in AWS —
 * input and output buckets, the queue with its dead-letter queue, and the bucket notification.
 */
import {
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  type BucketLocationConstraint,
  type NotificationConfiguration,
  type QueueConfiguration,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { InvalidArgumentError, type Command } from 'commander';
import type { AwsClients } from '../aws.js';
import { describeRegistryLocation, parseRegistryLocation, type RegistryLocation } from '../schema/location.js';

export interface SetupOptions {
  inputBucket: string;
  outputBucket: string;
  queue: string;
  /** Default `${queue}-dlq`. */
  dlq?: string;
  /** Receives before a message moves to the DLQ. Default 5. */
  maxReceiveCount?: number;
  /**
   * Key suffixes that trigger a conversion; one notification rule each (S3 filters allow one
   * suffix per rule). Default `['.csv', '.csv.gz']`. S3 matches them case-sensitively.
   */
  suffix?: string | string[];
  /** Seconds; left as it is on the queue when not given. */
  visibilityTimeout?: number;
  /** `s3://bucket/prefix/` for SCHEMA_REGISTRY: its bucket is created too. */
  schemaRegistry?: string;
}

export interface SetupResult {
  inputBucket: string;
  outputBucket: string;
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
  suffixes: string[];
  /**
   * True when the bucket notification was written. S3 then sends an `s3:TestEvent` to the queue;
   * the consumer acknowledges and drops it (parseNotification gives `kind: 'test-event'`).
   */
  notificationUpdated: boolean;
  /** The SCHEMA_REGISTRY value to give the service, when asked for. */
  schemaRegistry?: string;
}

const DEFAULT_SUFFIXES = ['.csv', '.csv.gz'];
/** Our notification rules are recognised, and replaced, by this Id prefix; others are kept. */
const NOTIFICATION_ID_PREFIX = 's3-csv-converter';
/** The longest SQS allows: dead letters keep their original enqueue time, so give them all of it. */
const DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60;

/**
 * Idempotent: running it again changes nothing that is already right, and corrects what is not
 * (e.g. a new maxReceiveCount). Independent of commander so tests and the service can call it.
 */
export async function setupPipeline(clients: AwsClients, options: SetupOptions): Promise<SetupResult> {
  const settings = validate(options);
  const { s3, sqs } = clients;

  const region = await s3.config.region();
  await ensureBucket(clients, settings.inputBucket, region);
  await ensureBucket(clients, settings.outputBucket, region);
  // Documents are created by the first file of each dataset; the bucket is all the registry needs.
  if (settings.schemaRegistry && ![settings.inputBucket, settings.outputBucket].includes(settings.schemaRegistry.bucket)) {
    await ensureBucket(clients, settings.schemaRegistry.bucket, region);
  }

  const dlqUrl = await ensureQueue(clients, settings.dlq);
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: dlqUrl,
      Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) },
    }),
  );
  const dlqArn = await queueArnOf(clients, dlqUrl);

  const queueUrl = await ensureQueue(clients, settings.queue);
  const queueArn = await queueArnOf(clients, queueUrl);
  const bucketArn = `arn:${partitionOf(queueArn)}:s3:::${settings.inputBucket}`;
  const { Attributes: current } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['Policy'] }));
  // Set before the notification: AWS validates that S3 may send to the queue when it is configured.
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl,
      Attributes: {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: settings.maxReceiveCount }),
        Policy: JSON.stringify(s3SendPolicy(queueArn, bucketArn, current?.Policy)),
        ...(settings.visibilityTimeout === undefined ? {} : { VisibilityTimeout: String(settings.visibilityTimeout) }),
      },
    }),
  );

  const notificationUpdated = await ensureNotification(clients, settings.inputBucket, queueArn, settings.suffixes);

  return {
    inputBucket: settings.inputBucket,
    outputBucket: settings.outputBucket,
    queueUrl,
    queueArn,
    dlqUrl,
    dlqArn,
    suffixes: settings.suffixes,
    notificationUpdated,
    ...(settings.schemaRegistry ? { schemaRegistry: describeRegistryLocation(settings.schemaRegistry) } : {}),
  };
}

type Settings = Required<Omit<SetupOptions, 'suffix' | 'visibilityTimeout' | 'schemaRegistry'>> & {
  suffixes: string[];
  visibilityTimeout?: number;
  schemaRegistry?: RegistryLocation;
};

/** Every option is checked here, before anything is created, so a bad run changes nothing. */
function validate(options: SetupOptions): Settings {
  const problems: string[] = [];
  for (const name of ['inputBucket', 'outputBucket', 'queue'] as const) {
    if (!options[name]) problems.push(`${name} is required`);
  }
  const dlq = options.dlq ?? `${options.queue}-dlq`;
  if (dlq === options.queue) problems.push('dlq must differ from queue');
  for (const name of [options.queue, dlq]) {
    // S3 event notifications cannot target FIFO queues.
    if (name?.endsWith('.fifo')) problems.push(`queue ${name} is FIFO; S3 can only notify standard queues`);
  }
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
    problems.push(`maxReceiveCount must be an integer from 1 to 1000, not ${maxReceiveCount}`);
  }
  const vt = options.visibilityTimeout;
  if (vt !== undefined && (!Number.isInteger(vt) || vt < 0 || vt > 43_200)) {
    problems.push(`visibilityTimeout must be an integer from 0 to 43200 seconds, not ${vt}`);
  }
  const suffixes = [...new Set(options.suffix === undefined ? DEFAULT_SUFFIXES : [options.suffix].flat())];
  if (suffixes.length === 0) problems.push('give at least one suffix');
  // S3 rejects two rules for the same event whose suffixes overlap (one ends with the other).
  for (const a of suffixes) {
    for (const b of suffixes) {
      if (a !== b && a.endsWith(b)) problems.push(`suffixes "${a}" and "${b}" overlap; S3 refuses overlapping rules`);
    }
  }
  let schemaRegistry: RegistryLocation | undefined;
  if (options.schemaRegistry !== undefined) {
    try {
      schemaRegistry = parseRegistryLocation(options.schemaRegistry);
    } catch (error) {
      problems.push(`schemaRegistry ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`setup: ${problems.join('; ')}`);
  return {
    inputBucket: options.inputBucket,
    outputBucket: options.outputBucket,
    queue: options.queue,
    dlq,
    maxReceiveCount,
    suffixes,
    ...(vt === undefined ? {} : { visibilityTimeout: vt }),
    ...(schemaRegistry ? { schemaRegistry } : {}),
  };
}

async function ensureBucket({ s3 }: AwsClients, bucket: string, region: string): Promise<void> {
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        // us-east-1 is the one region that refuses an explicit location constraint.
        ...(region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    );
  } catch (error) {
    if (error instanceof BucketAlreadyOwnedByYou) return;
    if ((error as { name?: string }).name === 'BucketAlreadyExists') {
      throw new Error(`bucket ${bucket} already exists and belongs to another account: choose another name`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** CreateQueue without attributes returns the existing queue's URL instead of failing on a mismatch. */
async function ensureQueue({ sqs }: AwsClients, name: string): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return QueueUrl;
}

async function queueArnOf({ sqs }: AwsClients, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`GetQueueAttributes ${queueUrl} returned no QueueArn`);
  return arn;
}

function partitionOf(arn: string): string {
  return arn.split(':')[1] || 'aws';
}

const POLICY_SID = 'S3CsvConverterInputBucketEvents';

interface PolicyStatement {
  Sid?: string;
  Condition?: { ArnLike?: { 'aws:SourceArn'?: string | string[] } };
  [field: string]: unknown;
}

/**
 * Lets S3 deliver events from the input buckets, and only from them, in the queue's own account.
 * Several input buckets may feed one queue: the buckets our statement already allows are kept (a
 * second `setup` with another input bucket must not cut the first one off), and so are statements
 * that are not ours.
 */
export function s3SendPolicy(queueArn: string, bucketArn: string, currentPolicy?: string) {
  const account = queueArn.split(':')[4];
  let statements: PolicyStatement[] = [];
  try {
    statements = currentPolicy ? ((JSON.parse(currentPolicy) as { Statement?: PolicyStatement[] }).Statement ?? []) : [];
  } catch {
    // An unreadable policy is replaced by ours.
  }
  const ours = statements.find((statement) => statement.Sid === POLICY_SID);
  const allowed = new Set([ours?.Condition?.ArnLike?.['aws:SourceArn'] ?? []].flat());
  allowed.add(bucketArn);
  return {
    Version: '2012-10-17',
    Statement: [
      ...statements.filter((statement) => statement.Sid !== POLICY_SID),
      {
        Sid: POLICY_SID,
        Effect: 'Allow',
        Principal: { Service: 's3.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queueArn,
        Condition: {
          ArnLike: { 'aws:SourceArn': allowed.size === 1 ? bucketArn : [...allowed].sort() },
          // Guards against a deleted bucket's name being taken by another account.
          ...(account ? { StringEquals: { 'aws:SourceAccount': account } } : {}),
        },
      },
    ],
  };
}

/**
 * Writes our rules into the bucket's notification configuration, keeping everyone else's.
 * Skips the write when ours are already right, because every write makes S3 send a TestEvent.
 */
async function ensureNotification(
  { s3 }: AwsClients,
  bucket: string,
  queueArn: string,
  suffixes: string[],
): Promise<boolean> {
  const { $metadata: _, ...current } = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  const isOurs = (rule: QueueConfiguration) => rule.Id?.startsWith(NOTIFICATION_ID_PREFIX) ?? false;
  const wanted: QueueConfiguration[] = suffixes.map((suffix) => ({
    Id: `${NOTIFICATION_ID_PREFIX}${suffix}`,
    QueueArn: queueArn,
    Events: ['s3:ObjectCreated:*'],
    ...(suffix === '' ? {} : { Filter: { Key: { FilterRules: [{ Name: 'suffix', Value: suffix }] } } }),
  }));
  const existing = (current.QueueConfigurations ?? []).filter(isOurs);
  if (sameRules(existing, wanted)) return false;

  const next: NotificationConfiguration = {
    ...current,
    QueueConfigurations: [...(current.QueueConfigurations ?? []).filter((rule) => !isOurs(rule)), ...wanted],
  };
  await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: next }));
  return true;
}

function sameRules(a: QueueConfiguration[], b: QueueConfiguration[]): boolean {
  const canonical = (rules: QueueConfiguration[]) =>
    JSON.stringify(
      rules
        .map((rule) => ({
          id: rule.Id,
          arn: rule.QueueArn,
          events: [...(rule.Events ?? [])].sort(),
          // S3 echoes rule names capitalised ("Suffix"); compare them case-blind.
          filters: (rule.Filter?.Key?.FilterRules ?? [])
            .map((f) => `${(f.Name ?? '').toLowerCase()}=${f.Value ?? ''}`)
            .sort(),
        }))
        .sort((x, y) => (x.id ?? '').localeCompare(y.id ?? '')),
    );
  return canonical(a) === canonical(b);
}

export interface SetupCommandDeps {
  /** Called when the command runs; the caller owns (and destroys) the clients. */
  clients: () => AwsClients;
  /** Where output goes; stdout by default. */
  print?: (text: string) => void;
}

export function registerSetupCommand(program: Command, deps: SetupCommandDeps): Command {
  const print = deps.print ?? ((text: string) => void process.stdout.write(`${text}\n`));
  return program
    .command('setup')
    .description('create or update the buckets, queue, dead-letter queue and S3 notification the service needs')
    .requiredOption('--input-bucket <bucket>', 'bucket where CSV files land')
    .requiredOption('--output-bucket <bucket>', 'bucket that receives Parquet and Avro outputs')
    .requiredOption('--queue <name>', 'SQS queue that receives the S3 notifications')
    .option('--dlq <name>', 'dead-letter queue (default: <queue>-dlq)')
    .option('--max-receive-count <n>', 'receives before a message is dead-lettered', integer, 5)
    .option('--suffix <suffix>', `key suffix that triggers a conversion; repeat for several (default: ${DEFAULT_SUFFIXES.join(' ')})`, collect)
    .option('--visibility-timeout <seconds>', 'queue visibility timeout (default: leave as is)', integer)
    .option('--schema-registry <s3://bucket/prefix/>', 'also create the bucket for dataset schemas (the SCHEMA_REGISTRY to give the service)')
    .option('--json', 'print the result as JSON')
    .action(async (flags: SetupFlags) => {
      const result = await setupPipeline(deps.clients(), {
        inputBucket: flags.inputBucket,
        outputBucket: flags.outputBucket,
        queue: flags.queue,
        maxReceiveCount: flags.maxReceiveCount,
        ...(flags.dlq === undefined ? {} : { dlq: flags.dlq }),
        ...(flags.suffix === undefined ? {} : { suffix: flags.suffix }),
        ...(flags.visibilityTimeout === undefined ? {} : { visibilityTimeout: flags.visibilityTimeout }),
        ...(flags.schemaRegistry === undefined ? {} : { schemaRegistry: flags.schemaRegistry }),
      });
      print(flags.json ? JSON.stringify(result, null, 2) : describe(result));
    });
}

interface SetupFlags {
  inputBucket: string;
  outputBucket: string;
  queue: string;
  dlq?: string;
  maxReceiveCount: number;
  suffix?: string[];
  visibilityTimeout?: number;
  schemaRegistry?: string;
  json?: boolean;
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function describe(result: SetupResult): string {
  const suffixes = result.suffixes.map((s) => (s === '' ? '(any key)' : s)).join(', ');
  return [
    `input bucket:  s3://${result.inputBucket}`,
    `output bucket: s3://${result.outputBucket}`,
    `queue:         ${result.queueUrl}`,
    `dead letters:  ${result.dlqUrl}`,
    `notification:  ObjectCreated with suffix ${suffixes} -> queue (${result.notificationUpdated ? 'written' : 'unchanged'})`,
    ...(result.schemaRegistry ? [`schemas:       ${result.schemaRegistry} (set SCHEMA_REGISTRY to this)`] : []),
    ...(result.notificationUpdated
      ? ['S3 sent an s3:TestEvent to the queue; the service acknowledges and drops it.']
      : []),
  ].join('\n');
}
