/**
 * The `backfill` command: enqueue, as S3 notifications for `serve`, the CSV objects already in a
 * bucket whose outputs are missing or stale. Where outputs live comes from the service's own
 * settings (OUTPUT_BUCKET, OUTPUT_PREFIX, OUTPUT_KEY_TEMPLATE, FORMATS), so the two always agree.
 */
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { createAwsClients, type AwsClients } from '../aws.js';
import { bucketNameProblem } from '../config/s3-names.js';
import { loadSettingsSubset, type Settings } from '../config/settings.js';
import type { FormatRegistry } from '../formats/registry.js';
import { runBackfill, type BackfillCounts, type BackfillReport } from '../backfill/run.js';
import { parseModifiedSince } from '../backfill/since.js';

export interface BackfillCommandDeps {
  registry: FormatRegistry;
  /** Settings are read from here; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Results; stdout by default. */
  print?: (text: string) => void;
  /** Progress and failures; stderr by default. */
  printError?: (text: string) => void;
}

interface BackfillFlags {
  bucket: string;
  prefix: string;
  queue?: string;
  modifiedSince?: Date;
  dryRun?: boolean;
  rate?: number;
  json?: boolean;
  progress: boolean;
}

/** The settings backfill reads (and QUEUE_URL unless `--queue` is given), validated as `serve` validates them. */
export const BACKFILL_SETTINGS = ['outputBucket', 'outputPrefix', 'outputKeyTemplate', 'formats', 'awsEndpointUrl', 'awsRegion'] as const satisfies readonly (keyof Settings)[];

export function registerBackfillCommand(program: Command, deps: BackfillCommandDeps): Command {
  const print = deps.print ?? ((text: string) => void process.stdout.write(`${text}\n`));
  const printError = deps.printError ?? ((text: string) => void process.stderr.write(`${text}\n`));

  return program
    .command('backfill')
    .description('enqueue, as S3 notifications for serve, the CSV objects in a bucket whose outputs are missing or stale')
    .requiredOption('--bucket <name>', 'the input bucket to list', bucketName)
    .option('--prefix <prefix>', 'only keys that start with this', '')
    .option('--queue <url>', 'the queue serve reads (default: QUEUE_URL)', queueUrl)
    .option('--modified-since <time>', 'only objects last modified at or after this: ISO 8601 (2024-05-01T00:00:00Z) or a duration back from now (P2D)', modifiedSince)
    .option('--dry-run', 'send nothing: list what would be enqueued')
    .option('--rate <per-second>', 'send at most this many notifications a second', positiveNumber)
    .option('--json', 'print the counts as JSON')
    .option('--no-progress', 'never show a progress bar')
    .action(async (flags: BackfillFlags) => {
      const env = deps.env ?? process.env;
      // A dry run sends nothing, so it needs no queue; a QUEUE_URL that is set is still checked.
      const readQueueUrl = !flags.queue && (!flags.dryRun || Boolean(env.QUEUE_URL));
      const settings: Pick<Settings, (typeof BACKFILL_SETTINGS)[number]> & Partial<Pick<Settings, 'queueUrl'>> = loadSettingsSubset(
        readQueueUrl ? [...BACKFILL_SETTINGS, 'queueUrl'] : BACKFILL_SETTINGS,
        env,
      );
      const queue = flags.queue ?? settings.queueUrl;
      for (const name of settings.formats) {
        if (!deps.registry.has(name)) throw new Error(`invalid setting FORMATS: unknown format "${name}" (known: ${deps.registry.names().join(', ')})`);
      }
      const layout = {
        prefix: settings.outputPrefix,
        template: settings.outputKeyTemplate,
        formats: settings.formats.map((name) => ({ name, extension: deps.registry.get(name).extension })),
      };

      const showProgress = flags.progress && !flags.json && !flags.dryRun && Boolean(process.stderr.isTTY);
      const bar = showProgress ? progressBar() : undefined;
      const clients: AwsClients = createAwsClients({ endpoint: settings.awsEndpointUrl, region: settings.awsRegion });
      // Ctrl-C stops the listing after the page in hand and sends what was decided; twice quits at once.
      const controller = new AbortController();
      const quit = () => process.exit(130);
      const onInterrupt = () => {
        printError('interrupted: sending what was decided, then stopping (Ctrl-C again to quit at once)');
        controller.abort();
        process.once('SIGINT', quit);
      };
      process.once('SIGINT', onInterrupt);
      let report: BackfillReport;
      try {
        report = await runBackfill({
          s3: clients.s3,
          sqs: clients.sqs,
          bucket: flags.bucket,
          prefix: flags.prefix,
          outputBucket: settings.outputBucket,
          layout,
          queueUrl: queue,
          region: settings.awsRegion,
          modifiedSince: flags.modifiedSince,
          dryRun: flags.dryRun ?? false,
          rate: flags.rate,
          signal: controller.signal,
          onProgress: bar && ((counts) => bar.update(counts)),
          onWouldEnqueue: flags.json ? undefined : (object, verdict) => print(`would enqueue  ${verdict.padEnd(7)}  s3://${flags.bucket}/${object.key}`),
          onFailure: (failure) => printError(`✗ not enqueued: s3://${flags.bucket}/${failure.key}: ${failure.error}`),
        });
      } finally {
        bar?.stop();
        process.off('SIGINT', onInterrupt);
        process.off('SIGINT', quit);
        clients.destroy();
      }

      if (flags.json) print(JSON.stringify(jsonOf(report), null, 2));
      // A run that stopped (a missing bucket or queue, access denied) says so in one line, below.
      else if (report.error === undefined) print(describe(report));
      if (report.error !== undefined) throw new Error(report.error);
      if (report.failed > 0 || report.interrupted) process.exitCode = 1;
    });
}

/** The contract's counts first, then what explains them. */
function jsonOf(report: BackfillReport) {
  const { listed, csv, current, missing, stale, enqueued, failed, older, checked, failures, bucket, prefix, queueUrl, dryRun, interrupted, error } = report;
  return { listed, csv, current, missing, stale, enqueued, failed, older, checked, dryRun, bucket, prefix, queueUrl: queueUrl ?? null, failures, interrupted, ...(error === undefined ? {} : { error }) };
}

function describe(report: BackfillReport): string {
  const where = `s3://${report.bucket}/${report.prefix}`;
  const lines = [
    `${where}: listed ${report.listed}, ${report.csv} CSV: ${report.current} current, ${report.missing} missing, ${report.stale} stale` +
      (report.older > 0 ? ` (${report.older} older CSV skipped by --modified-since)` : '') +
      (report.checked > 0 ? `; ${report.checked} outputs checked by HEAD` : ''),
  ];
  const toSend = report.missing + report.stale;
  if (report.dryRun) lines.push(`dry run: would enqueue ${toSend}${report.queueUrl ? ` to ${report.queueUrl}` : ''}; nothing was sent`);
  else lines.push(`enqueued ${report.enqueued}, failed ${report.failed} → ${report.queueUrl}`);
  if (report.failed > 0) lines.push(`${report.failed} not enqueued (listed above); run backfill again once the queue accepts them`);
  if (report.interrupted) lines.push('interrupted: objects after the last page handled were not looked at; run it again');
  return lines.join('\n');
}

function progressBar(): { update(counts: BackfillCounts): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: 'backfill | listed {listed} | CSV {csv}: current {current}, missing {missing}, stale {stale} | enqueued {enqueued}, failed {failed}',
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(0, 0, { listed: 0, csv: 0, current: 0, missing: 0, stale: 0, enqueued: 0, failed: 0 });
  return {
    update: (counts) => bar.update(0, counts),
    stop: () => bar.stop(),
  };
}

function bucketName(value: string): string {
  const problem = bucketNameProblem(value);
  if (problem) throw new InvalidArgumentError(`not a valid S3 bucket name: it ${problem}`);
  return value;
}

function queueUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected the queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/s3cc-events');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http:// or https:// queue URL');
  return value;
}

function modifiedSince(value: string): Date {
  const parsed = parseModifiedSince(value);
  if (!(parsed instanceof Date)) throw new InvalidArgumentError(parsed.problem);
  return parsed;
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError('expected a number > 0');
  return number;
}
