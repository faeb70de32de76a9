/** Finds the queues a DLQ command works on: a queue's DLQ from its RedrivePolicy, and back again. */
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  paginateListDeadLetterSourceQueues,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** The operator must name a queue the tool could not find by itself. */
export class QueueLookupError extends Error {
  override readonly name = 'QueueLookupError';
}

export async function queueArnOf(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`GetQueueAttributes ${queueUrl} returned no QueueArn`);
  return arn;
}

/** The DLQ named by the queue's RedrivePolicy. */
export async function deadLetterQueueOf(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }));
  const policy = Attributes?.RedrivePolicy;
  if (!policy) throw new QueueLookupError(`queue ${queueUrl} has no RedrivePolicy, so it names no DLQ: give --dlq URL`);
  let arn: unknown;
  try {
    arn = (JSON.parse(policy) as { deadLetterTargetArn?: unknown }).deadLetterTargetArn;
  } catch {
    arn = undefined;
  }
  if (typeof arn !== 'string' || arn === '') {
    throw new QueueLookupError(`the RedrivePolicy of ${queueUrl} names no deadLetterTargetArn (${policy}): give --dlq URL`);
  }
  return queueUrlOfArn(sqs, arn);
}

export async function queueUrlOfArn(sqs: SQSClient, arn: string): Promise<string> {
  // arn:partition:sqs:region:account:name
  const [, , , , account, name] = arn.split(':');
  if (!name) throw new QueueLookupError(`${arn} is not an SQS queue ARN`);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name, ...(account ? { QueueOwnerAWSAccountId: account } : {}) }));
  if (!QueueUrl) throw new Error(`GetQueueUrl ${name} returned no QueueUrl`);
  return QueueUrl;
}

/** Queues whose RedrivePolicy names this DLQ (ListDeadLetterSourceQueues). */
export async function sourceQueuesOf(sqs: SQSClient, dlqUrl: string): Promise<string[]> {
  const urls: string[] = [];
  for await (const page of paginateListDeadLetterSourceQueues({ client: sqs }, { QueueUrl: dlqUrl })) {
    urls.push(...(page.queueUrls ?? []));
  }
  return urls;
}

/** Where `redrive` sends messages when `--to` is not given: the one queue that uses this DLQ. */
export async function defaultDestinationOf(sqs: SQSClient, dlqUrl: string): Promise<string> {
  let sources: string[];
  try {
    sources = await sourceQueuesOf(sqs, dlqUrl);
  } catch (error) {
    throw new QueueLookupError(
      `could not list the queues that use ${dlqUrl} as their DLQ (${(error as Error).message}): give --to URL`,
      { cause: error },
    );
  }
  if (sources.length === 1) return sources[0]!;
  if (sources.length === 0) {
    throw new QueueLookupError(`no queue names ${dlqUrl} in its RedrivePolicy, so there is no default destination: give --to URL`);
  }
  throw new QueueLookupError(`several queues use ${dlqUrl} as their DLQ (${sources.join(', ')}): choose one with --to URL`);
}

export interface QueueDepth {
  /** Messages waiting to be received. */
  visible: number;
  /** Received by someone and not yet deleted or made visible again: a visit cannot see them. */
  inFlight: number;
}

/** SQS's approximate counts; good for a progress bar's total and for saying what a visit missed. */
export async function queueDepthOf(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}
