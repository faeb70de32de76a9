/**
 * The dead-letter format: a message that can never succeed goes to the DLQ with its original body
 * and the reason a human needs to fix it. Written by the service, read and removed by `dlq`.
 */
import { SendMessageCommand, type Message, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import type { Failure } from '../errors.js';

/** The attributes our dead letters carry; `dlq redrive` removes exactly these. */
export const DEAD_LETTER_ATTRIBUTES = ['error-code', 'error-message', 'source-message-id', 'failed-at', 'attempts'] as const;

/** SQS allows 10 message attributes; ours take five, the rest of the original's are kept. */
const MAX_ATTRIBUTES = 10;
const MAX_ERROR_MESSAGE = 2000;

/**
 * Sends the original body to the DLQ with the failure attached. The caller deletes the source
 * message only after this resolves: a crash in between duplicates a dead letter, never loses one.
 */
export async function deadLetter(sqs: SQSClient, dlqUrl: string, message: Message, failure: Failure): Promise<void> {
  const attributes: Record<string, MessageAttributeValue> = {
    'error-code': text(failure.code),
    'error-message': text(failure.message.slice(0, MAX_ERROR_MESSAGE)),
    'source-message-id': text(message.MessageId ?? 'unknown'),
    'failed-at': text(new Date().toISOString()),
    attempts: { DataType: 'Number', StringValue: message.Attributes?.ApproximateReceiveCount ?? '1' },
  };
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (Object.keys(attributes).length >= MAX_ATTRIBUTES) break;
    if (!(name in attributes)) attributes[name] = value;
  }
  await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: message.Body ?? '', MessageAttributes: attributes }));
}

function text(value: string): MessageAttributeValue {
  // SQS rejects empty attribute values.
  return { DataType: 'String', StringValue: value === '' ? '-' : value };
}
