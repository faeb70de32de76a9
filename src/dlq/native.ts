/**
 * `dlq redrive --native`: SQS moves the messages itself (StartMessageMoveTask) and we follow the
 * task to its end (ListMessageMoveTasks). Only where the endpoint has the move-task API: AWS and
 * LocalStack do, moto does not. SQS moves messages as they are, with our dead-letter attributes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CancelMessageMoveTaskCommand,
  ListMessageMoveTasksCommand,
  StartMessageMoveTaskCommand,
  type ListMessageMoveTasksResultEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** The endpoint has no move-task API; the message says what to do instead. */
export class MoveTaskUnsupportedError extends Error {
  override readonly name = 'MoveTaskUnsupportedError';
}

export interface NativeMoveOptions {
  dlqArn: string;
  destinationArn: string;
  /** MaxNumberOfMessagesPerSecond: a whole number up to 500; SQS chooses when absent. */
  rate?: number;
  /** Default 2. */
  pollSeconds?: number;
  /** Cancels the task: what moved stays moved, the rest stays in the DLQ. */
  signal?: AbortSignal;
  onProgress?: (moved: number, toMove: number | undefined) => void;
}

export interface NativeMoveResult {
  status: 'COMPLETED' | 'CANCELLED';
  moved: number;
  toMove?: number;
}

const MAX_NATIVE_RATE = 500;

/** Error names endpoints give for an action they do not have. */
const UNSUPPORTED_NAMES = new Set([
  'UnsupportedOperation',
  'AWS.SimpleQueueService.UnsupportedOperation',
  'InvalidAction',
  'UnknownOperationException',
  'NotImplemented',
  'NotImplementedException',
]);

export async function moveWithTask(sqs: SQSClient, options: NativeMoveOptions): Promise<NativeMoveResult> {
  const { rate } = options;
  if (rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > MAX_NATIVE_RATE)) {
    throw new RangeError(`--native takes --rate as a whole number from 1 to ${MAX_NATIVE_RATE}, not ${rate}`);
  }
  let taskHandle: string | undefined;
  try {
    ({ TaskHandle: taskHandle } = await sqs.send(
      new StartMessageMoveTaskCommand({
        SourceArn: options.dlqArn,
        DestinationArn: options.destinationArn,
        ...(rate === undefined ? {} : { MaxNumberOfMessagesPerSecond: rate }),
      }),
    ));
  } catch (error) {
    const unsupported = unsupportedBecause(error);
    if (unsupported) {
      throw new MoveTaskUnsupportedError(
        `--native: this endpoint does not support SQS message move tasks (StartMessageMoveTask ${unsupported}). ` +
          'AWS and LocalStack have them, moto does not. Run without --native: the default loop works on every endpoint.',
        { cause: error },
      );
    }
    throw error;
  }

  const pollMs = (options.pollSeconds ?? 2) * 1000;
  for (;;) {
    try {
      await sleep(pollMs, undefined, options.signal ? { signal: options.signal } : {});
    } catch {
      if (taskHandle) await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: taskHandle }));
      const moved = (await currentTask(sqs, options.dlqArn, taskHandle))?.ApproximateNumberOfMessagesMoved ?? 0;
      return { status: 'CANCELLED', moved };
    }
    const task = await currentTask(sqs, options.dlqArn, taskHandle);
    if (!task) throw new Error(`ListMessageMoveTasks does not list the move task started on ${options.dlqArn}`);
    const moved = task.ApproximateNumberOfMessagesMoved ?? 0;
    const toMove = task.ApproximateNumberOfMessagesToMove;
    options.onProgress?.(moved, toMove);
    switch (task.Status) {
      case 'COMPLETED':
        return { status: 'COMPLETED', moved, ...(toMove === undefined ? {} : { toMove }) };
      case 'FAILED':
        throw new Error(`the SQS move task failed after moving ${moved} messages: ${task.FailureReason ?? 'no reason given'}`);
      case 'CANCELLING':
      case 'CANCELLED':
        throw new Error(`the SQS move task was cancelled (by someone else) after moving ${moved} messages`);
      default:
        // RUNNING
        break;
    }
  }
}

/**
 * SQS runs one move task per source queue at a time and lists the newest first; it names the
 * handle only while the task runs, so a finished task is the newest one listed.
 */
async function currentTask(sqs: SQSClient, dlqArn: string, taskHandle: string | undefined): Promise<ListMessageMoveTasksResultEntry | undefined> {
  const { Results = [] } = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
  const byHandle = Results.find((task) => taskHandle !== undefined && task.TaskHandle === taskHandle);
  if (byHandle) return byHandle;
  return [...Results].sort((a, b) => (b.StartedTimestamp ?? 0) - (a.StartedTimestamp ?? 0))[0];
}

/** Why the error means "no such action here", or undefined when it is some other failure. */
export function unsupportedBecause(error: unknown): string | undefined {
  const e = (error ?? {}) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name && UNSUPPORTED_NAMES.has(e.name)) return `answered ${e.name}`;
  if (status === 501) return 'answered HTTP 501 Not Implemented';
  // moto answers an action it lacks with an HTML error page: not an SQS answer at all.
  if (status !== undefined && status >= 500 && (e.name === 'SyntaxError' || /Deserialization error/i.test(e.message ?? ''))) {
    return `answered HTTP ${status} with a page that is not an SQS response`;
  }
  return undefined;
}
