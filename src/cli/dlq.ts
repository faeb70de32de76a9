/** The `dlq` commands: `inspect` says why messages were dead-lettered, `redrive` puts them back. */
import { createInterface } from 'node:readline/promises';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AwsClients } from '../aws.js';
import { inspectDlq, DEFAULT_INSPECT_MAX, type InspectReport } from '../dlq/inspect.js';
import { ageOf, subjectOf, type DeadLetter, type LetterFilter } from '../dlq/letters.js';
import { moveWithTask } from '../dlq/native.js';
import { deadLetterQueueOf, defaultDestinationOf, queueArnOf, queueDepthOf } from '../dlq/queues.js';
import { redriveDlq, type RedriveCounts, type RedriveResult } from '../dlq/redrive.js';

export interface DlqCommandDeps {
  /** Called when a command runs; the caller owns (and destroys) the clients. */
  clients: () => AwsClients;
  /** Results; stdout by default. */
  print?: (text: string) => void;
  /** Progress, questions and problems; stderr by default. */
  printError?: (text: string) => void;
  /** Whether someone can answer a question; by default, when stdin and stderr are terminals. */
  interactive?: () => boolean;
  /** Asks a yes/no question; by default on the terminal. */
  confirm?: (question: string) => Promise<boolean>;
}

interface InspectFlags {
  dlq?: string;
  queue?: string;
  max: number;
  json?: boolean;
}

interface RedriveFlags {
  dlq?: string;
  to?: string;
  filterError?: string[];
  filterKeyPrefix?: string;
  max?: number;
  rate?: number;
  dryRun?: boolean;
  yes?: boolean;
  native?: boolean;
  json?: boolean;
  progress: boolean;
}

export function registerDlqCommand(program: Command, deps: DlqCommandDeps): Command {
  const print = deps.print ?? ((text: string) => void process.stdout.write(`${text}\n`));
  const printError = deps.printError ?? ((text: string) => void process.stderr.write(`${text}\n`));
  const interactive = deps.interactive ?? (() => Boolean(process.stdin.isTTY && process.stderr.isTTY));
  const confirm = deps.confirm ?? askOnTerminal;

  const dlq = program.command('dlq').description('inspect dead-lettered messages and move them back once their cause is fixed');

  dlq
    .command('inspect')
    .description('list the messages in the DLQ with why each failed, grouped by error code; the DLQ is left as it was')
    .addOption(new Option('--dlq <url>', 'the dead-letter queue').conflicts('queue'))
    .option('--queue <url>', "the source queue: its RedrivePolicy names the DLQ")
    .option('--max <n>', 'read at most this many messages', wholeNumber, DEFAULT_INSPECT_MAX)
    .option('--json', 'print the report as JSON')
    .action(async (flags: InspectFlags) => {
      const { sqs } = deps.clients();
      const dlqUrl = flags.dlq ?? (flags.queue ? await deadLetterQueueOf(sqs, flags.queue) : undefined);
      if (!dlqUrl) throw new Error('dlq inspect: give --dlq URL, or --queue URL of a queue whose RedrivePolicy names the DLQ');
      const report = await whileInterruptible(printError, (signal) => inspectDlq(sqs, { dlqUrl, max: flags.max, signal }));
      print(flags.json ? JSON.stringify(inspectJson(report, new Date()), null, 2) : describeInspect(report, flags.max, new Date()));
    });

  dlq
    .command('redrive')
    .description('move messages from the DLQ back to a queue: sent there first, then deleted from the DLQ')
    .option('--dlq <url>', "the dead-letter queue (default: the one named by --to's RedrivePolicy)")
    .option('--to <url>', 'the destination queue (default: the queue whose RedrivePolicy names the DLQ)')
    .option('--filter-error <code>', 'move only messages with this error code (MAX_RECEIVES: moved by SQS itself); repeat or comma-separate for several', errorCodes)
    .option('--filter-key-prefix <prefix>', 'move only messages about an object whose key starts with this (or s3://bucket/prefix)')
    .option('--max <n>', 'move at most this many messages', wholeNumber)
    .option('--rate <per-second>', 'move at most this many messages a second', positiveNumber)
    .option('--dry-run', 'move nothing: report what would move')
    .option('--yes', 'do not ask for confirmation')
    .option('--native', 'let SQS move the messages (StartMessageMoveTask; AWS and LocalStack only): no filters, --max or --dry-run')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'never show a progress bar')
    .action(async (flags: RedriveFlags) => {
      const { sqs } = deps.clients();
      const problems = redriveFlagProblems(flags);
      if (problems.length > 0) throw new Error(`dlq redrive: ${problems.join('; ')}`);
      const dlqUrl = flags.dlq ?? (await deadLetterQueueOf(sqs, flags.to!));
      const destinationUrl = flags.to ?? (await defaultDestinationOf(sqs, dlqUrl));
      const filter: LetterFilter = {
        ...(flags.filterError ? { errorCodes: flags.filterError } : {}),
        ...(flags.filterKeyPrefix === undefined ? {} : { keyPrefix: flags.filterKeyPrefix }),
      };
      const depth = await queueDepthOf(sqs, dlqUrl);

      if (!flags.dryRun && !flags.yes) {
        const question = `Move ${scopeOf(flags, depth.visible, filter)} from ${dlqUrl} to ${destinationUrl}? [y/N] `;
        if (!interactive()) {
          throw new Error(`dlq redrive: refusing to move messages without --yes when there is no terminal to ask on (would ask: "${question.trim()}"); add --yes, or --dry-run to see what would move`);
        }
        if (!(await confirm(question))) {
          printError('nothing moved');
          process.exitCode = 1;
          return;
        }
      }

      const showProgress = flags.progress && !flags.json && Boolean(process.stderr.isTTY);
      if (flags.native) {
        const [dlqArn, destinationArn] = await Promise.all([queueArnOf(sqs, dlqUrl), queueArnOf(sqs, destinationUrl)]);
        const bar = showProgress ? progressBar('moved {value}/{total}', depth.visible) : undefined;
        const moved = await whileInterruptible(printError, (signal) =>
          moveWithTask(sqs, {
            dlqArn,
            destinationArn,
            signal,
            ...(flags.rate === undefined ? {} : { rate: flags.rate }),
            onProgress: (count, total) => {
              if (total !== undefined) bar?.setTotal(total);
              bar?.update(count);
            },
          }),
        ).finally(() => bar?.stop());
        print(
          flags.json
            ? JSON.stringify({ dlqUrl, destinationUrl, native: true, ...moved }, null, 2)
            : `SQS move task ${moved.status.toLowerCase()}: moved ≈${moved.moved} from ${dlqUrl} to ${destinationUrl} (SQS moves messages as they are, dead-letter attributes included)`,
        );
        if (moved.status !== 'COMPLETED') process.exitCode = 1;
        return;
      }

      const total = flags.max === undefined || filter.errorCodes || filter.keyPrefix !== undefined ? depth.visible : Math.min(depth.visible, flags.max);
      const bar = showProgress
        ? progressBar(`${flags.dryRun ? 'dry run' : 'redrive'} [{bar}] {value}/{total} | ${flags.dryRun ? 'would move' : 'moved'} {moved} skipped {skipped} failed {failed}`, total)
        : undefined;
      const result = await whileInterruptible(printError, (signal) =>
        redriveDlq(sqs, {
          dlqUrl,
          destinationUrl,
          filter,
          dryRun: flags.dryRun ?? false,
          signal,
          ...(flags.max === undefined ? {} : { max: flags.max }),
          ...(flags.rate === undefined ? {} : { rate: flags.rate }),
          onProgress: bar && ((counts) => updateBar(bar, counts)),
        }),
      ).finally(() => bar?.stop());

      if (flags.json) print(JSON.stringify(redriveJson(result), null, 2));
      else {
        for (const entry of result.entries) {
          if (entry.outcome === 'failed') printError(`✗ ${entry.letter.messageId} ${subjectOf(entry.letter)}: ${entry.error}`);
        }
        print(describeRedrive(result));
      }
      if (result.failed > 0 || result.interrupted || result.error !== undefined) process.exitCode = 1;
    });

  return dlq;
}

/** Combinations commander cannot check by itself; all reported at once. */
function redriveFlagProblems(flags: RedriveFlags): string[] {
  const problems: string[] = [];
  if (!flags.dlq && !flags.to) problems.push('give --dlq URL, or --to URL of a queue whose RedrivePolicy names the DLQ');
  if (flags.native) {
    const unsupported = [
      flags.filterError && '--filter-error',
      flags.filterKeyPrefix !== undefined && '--filter-key-prefix',
      flags.max !== undefined && '--max',
      flags.dryRun && '--dry-run',
    ].filter(Boolean);
    if (unsupported.length > 0) problems.push(`--native moves everything: it cannot take ${unsupported.join(', ')} (the default loop can)`);
  }
  return problems;
}

function scopeOf(flags: RedriveFlags, visible: number, filter: LetterFilter): string {
  const count = flags.max === undefined ? `all ≈${visible} messages` : `up to ${flags.max} of ≈${visible} messages`;
  const conditions = [
    filter.errorCodes && `error code ${filter.errorCodes.join(' or ')}`,
    filter.keyPrefix !== undefined && `key prefix "${filter.keyPrefix}"`,
  ].filter(Boolean);
  return conditions.length === 0 ? count : `${count} (only ${conditions.join(' and ')})`;
}

/**
 * Ctrl-C asks the work to stop after the messages in hand, so they are released (or moved) and
 * the count is printed; a second Ctrl-C ends the process at once (held messages reappear anyway).
 */
async function whileInterruptible<T>(printError: (text: string) => void, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onInterrupt = () => {
    printError('interrupted: finishing the messages in hand and releasing the rest (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.once('SIGINT', onInterrupt);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

async function askOnTerminal(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  // Ctrl-C or Ctrl-D at the prompt is a no, not a hang.
  const cancel = new AbortController();
  terminal.once('SIGINT', () => cancel.abort());
  terminal.once('close', () => cancel.abort());
  try {
    return /^y(es)?$/i.test((await terminal.question(question, { signal: cancel.signal })).trim());
  } catch {
    return false;
  } finally {
    terminal.close();
  }
}

function progressBar(format: string, total: number): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  bar.start(Math.max(total, 1), 0, { moved: 0, skipped: 0, failed: 0 });
  return bar;
}

function updateBar(bar: cliProgress.SingleBar, counts: RedriveCounts): void {
  const done = counts.moved + counts.failed + counts.skipped + counts.wouldMove + counts.returned;
  // SQS's count is approximate: grow the bar rather than overflow it.
  if (done > bar.getTotal()) bar.setTotal(done);
  // In a dry run one of moved and wouldMove is always 0.
  bar.update(done, { moved: counts.moved + counts.wouldMove, skipped: counts.skipped, failed: counts.failed });
}

function describeInspect(report: InspectReport, max: number, now: Date): string {
  const { depth, letters } = report;
  const lines = [`${report.dlqUrl}: ${plural(letters.length, 'message')} read (≈${depth.visible} waiting, ≈${depth.inFlight} in flight elsewhere and not readable now)`];
  if (!report.complete) lines.push(`stopped after ${letters.length}; more may wait (raise --max, now ${max})`);
  for (const letter of letters) lines.push('', ...describeLetter(letter, now));
  if (report.byCode.length > 0) {
    const width = Math.max(...report.byCode.map((summary) => summary.code.length));
    lines.push('', 'by error code:');
    for (const summary of report.byCode) {
      const oldest = summary.oldest ? `, oldest ${formatAge(now.getTime() - summary.oldest.getTime())} ago` : '';
      lines.push(`  ${summary.code.padEnd(width)}  ${String(summary.count).padStart(5)}${oldest}  e.g. ${summary.example}`);
    }
  }
  if (report.stillHidden > 0) lines.push('', `${plural(report.stillHidden, 'message')} could not be made visible again; they reappear within a minute`);
  return lines.join('\n');
}

function describeLetter(letter: DeadLetter, now: Date): string[] {
  const age = ageOf(letter, now);
  const when = letter.failedAt ? `failed ${letter.failedAt.toISOString()}` : letter.sentAt ? `first sent ${letter.sentAt.toISOString()}` : 'time unknown';
  const facts = [
    `${when}${age === undefined ? '' : ` (${formatAge(age)} ago)`}`,
    letter.attempts === undefined ? undefined : plural(letter.attempts, 'attempt'),
    `message ${letter.messageId}`,
  ].filter(Boolean);
  return [`${letter.code}  ${subjectOf(letter)}`, `  ${facts.join(', ')}`, `  ${letter.reason}`];
}

function describeRedrive(result: RedriveResult): string {
  const route = `from ${result.dlqUrl} to ${result.destinationUrl}`;
  const lines: string[] = [];
  if (result.dryRun) {
    lines.push(`dry run: would move ${result.wouldMove} ${route}, skipped ${result.skipped}; nothing was moved`);
    for (const entry of result.entries) lines.push(`  ${entry.letter.code}  ${subjectOf(entry.letter)}  (message ${entry.letter.messageId})`);
  } else {
    lines.push(`moved ${result.moved}, skipped ${result.skipped}, failed ${result.failed} ${route}`);
  }
  if (result.returned > 0) {
    lines.push(`${plural(result.returned, 'message')} failed again and came back to the DLQ while this ran: left there (is the cause fixed?)`);
  }
  if (result.error !== undefined) lines.push(`stopped early: ${result.error}; messages not handled are still in the DLQ`);
  if (result.interrupted) lines.push('interrupted: messages not handled are still in the DLQ');
  if (result.stillHidden > 0) lines.push(`${plural(result.stillHidden, 'message')} could not be made visible again; they reappear within a minute`);
  return lines.join('\n');
}

function letterJson(letter: DeadLetter, now: Date) {
  const age = ageOf(letter, now);
  return { ...letter, subject: subjectOf(letter), ...(age === undefined ? {} : { ageSeconds: Math.round(age / 1000) }) };
}

function inspectJson(report: InspectReport, now: Date) {
  return { ...report, letters: report.letters.map((letter) => letterJson(letter, now)) };
}

function redriveJson(result: RedriveResult) {
  const now = new Date();
  return { ...result, entries: result.entries.map((entry) => ({ ...entry, letter: letterJson(entry.letter, now) })) };
}

export function formatAge(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 120 * 60) return `${Math.round(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return Number(value);
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError('expected a number > 0');
  return number;
}

function errorCodes(value: string, previous: string[] | undefined): string[] {
  const codes = value.split(',').map((code) => code.trim().toUpperCase()).filter(Boolean);
  if (codes.length === 0) throw new InvalidArgumentError('expected an error code, e.g. RAGGED_ROW');
  return [...new Set([...(previous ?? []), ...codes])];
}
