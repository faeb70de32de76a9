/**
 * The queue's RedrivePolicy, checked at start-up: without one, a message that keeps failing is
 * retried until the queue's retention period deletes it, unseen, so the service refuses to start.
 */
import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';

export interface RedrivePolicy {
  deadLetterTargetArn: string;
  /** Receives after which SQS moves a message to the DLQ itself; the service dead-letters on the last one. */
  maxReceiveCount: number;
}

/** The queue's configuration must be fixed before the service can run; the message says how. */
export class QueuePolicyError extends Error {
  override readonly name = 'QueuePolicyError';
}

/** Reads and checks the RedrivePolicy of `queueUrl`; throws QueuePolicyError naming the queue and the fix. */
export async function readRedrivePolicy(sqs: SQSClient, queueUrl: string): Promise<RedrivePolicy> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }));
  return parseRedrivePolicy(Attributes?.RedrivePolicy, queueUrl);
}

export function parseRedrivePolicy(text: string | undefined, queueUrl: string): RedrivePolicy {
  const fix =
    'Give the queue a RedrivePolicy naming a dead-letter queue and a maxReceiveCount (`s3-csv-converter setup` creates both), e.g. ' +
    `aws sqs set-queue-attributes --queue-url ${queueUrl} --attributes '{"RedrivePolicy":"{\\"deadLetterTargetArn\\":\\"<DLQ ARN>\\",\\"maxReceiveCount\\":\\"5\\"}"}'`;
  if (!text) {
    throw new QueuePolicyError(
      `queue ${queueUrl} has no RedrivePolicy: a message that keeps failing would be retried until the queue's retention period deletes it, unseen. ${fix}`,
    );
  }
  let policy: { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
  try {
    policy = JSON.parse(text) as typeof policy;
  } catch {
    throw new QueuePolicyError(`queue ${queueUrl} has a RedrivePolicy that is not JSON (${text}). ${fix}`);
  }
  const arn = policy.deadLetterTargetArn;
  const count = Number(policy.maxReceiveCount);
  if (typeof arn !== 'string' || !arn.startsWith('arn:')) {
    throw new QueuePolicyError(`the RedrivePolicy of queue ${queueUrl} names no deadLetterTargetArn (${text}). ${fix}`);
  }
  if (!Number.isInteger(count) || count < 1) {
    throw new QueuePolicyError(`the RedrivePolicy of queue ${queueUrl} has no valid maxReceiveCount (${text}). ${fix}`);
  }
  return { deadLetterTargetArn: arn, maxReceiveCount: count };
}

/** The URL of the queue an ARN names (arn:partition:sqs:region:account:name). */
export async function queueUrlOfArn(sqs: SQSClient, arn: string): Promise<string> {
  const [, , , , account, name] = arn.split(':');
  if (!name) throw new QueuePolicyError(`${arn} is not an SQS queue ARN`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, ...(account ? { QueueOwnerAWSAccountId: account } : {}) }));
  if (!QueueUrl) throw new Error(`GetQueueUrl ${name} returned no QueueUrl`);
  return QueueUrl;
}
