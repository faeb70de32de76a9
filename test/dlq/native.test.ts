/**
 * `--native` against a stub SQS client. The success path cannot run end to end here: moto has no
 * move-task API (test/e2e/dlq.test.ts proves the refusal against it), so these tests pin down the
 * decisions: what counts as "unsupported", how the task is followed, cancelled and reported.
 */
import { expect } from 'chai';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { moveWithTask, MoveTaskUnsupportedError, unsupportedBecause } from '../../src/dlq/native.js';

type Call = { name: string; input: Record<string, unknown> };

/** Answers each command by name; records every call. */
function stubSqs(answers: Record<string, (input: Record<string, unknown>) => unknown>): { sqs: SQSClient; calls: Call[] } {
  const calls: Call[] = [];
  const sqs = {
    async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push({ name, input: command.input });
      const answer = answers[name];
      if (!answer) throw new Error(`unexpected ${name}`);
      return answer(command.input);
    },
  } as unknown as SQSClient;
  return { sqs, calls };
}

const options = { dlqArn: 'arn:aws:sqs:us-east-1:1:q-dlq', destinationArn: 'arn:aws:sqs:us-east-1:1:q', pollSeconds: 0.01 };

describe('redrive --native (stubbed SQS; not run end to end)', () => {
  it('starts a move task to the destination and follows it until SQS reports it complete', async () => {
    const states = [
      { TaskHandle: 'h1', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 1, ApproximateNumberOfMessagesToMove: 3, StartedTimestamp: 5 },
      { TaskHandle: 'h1', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 2, ApproximateNumberOfMessagesToMove: 3, StartedTimestamp: 5 },
      // A finished task is listed without its handle.
      { Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 3, ApproximateNumberOfMessagesToMove: 3, StartedTimestamp: 5 },
    ];
    const older = { Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 99, StartedTimestamp: 1 };
    const { sqs, calls } = stubSqs({
      StartMessageMoveTask: () => ({ TaskHandle: 'h1' }),
      ListMessageMoveTasks: () => ({ Results: [older, states.shift() ?? older] }),
    });
    const progress: number[] = [];
    const result = await moveWithTask(sqs, { ...options, rate: 50, onProgress: (moved) => progress.push(moved) });
    expect(result).to.deep.equal({ status: 'COMPLETED', moved: 3, toMove: 3 });
    expect(progress).to.deep.equal([1, 2, 3]);
    expect(calls[0]).to.deep.equal({
      name: 'StartMessageMoveTask',
      input: { SourceArn: options.dlqArn, DestinationArn: options.destinationArn, MaxNumberOfMessagesPerSecond: 50 },
    });
  });

  it('fails with SQS’s reason when the task fails', async () => {
    const { sqs } = stubSqs({
      StartMessageMoveTask: () => ({ TaskHandle: 'h1' }),
      ListMessageMoveTasks: () => ({ Results: [{ Status: 'FAILED', FailureReason: 'AccessDenied', ApproximateNumberOfMessagesMoved: 4 }] }),
    });
    const error = await moveWithTask(sqs, options).catch((e: Error) => e);
    expect((error as Error).message).to.equal('the SQS move task failed after moving 4 messages: AccessDenied');
  });

  it('cancels the task when interrupted', async () => {
    const controller = new AbortController();
    const { sqs, calls } = stubSqs({
      StartMessageMoveTask: () => ({ TaskHandle: 'h1' }),
      ListMessageMoveTasks: () => ({ Results: [{ TaskHandle: 'h1', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 2 }] }),
      CancelMessageMoveTask: () => ({}),
    });
    const running = moveWithTask(sqs, { ...options, pollSeconds: 60, signal: controller.signal });
    controller.abort();
    expect(await running).to.deep.equal({ status: 'CANCELLED', moved: 2 });
    expect(calls.map((call) => call.name)).to.deep.equal(['StartMessageMoveTask', 'CancelMessageMoveTask', 'ListMessageMoveTasks']);
  });

  it('says the endpoint lacks the API, and what to do instead, when it answers so', async () => {
    const { sqs } = stubSqs({
      StartMessageMoveTask: () => {
        throw Object.assign(new Error('Unsupported'), { name: 'UnsupportedOperation', $metadata: { httpStatusCode: 400 } });
      },
    });
    const error = await moveWithTask(sqs, options).catch((e: Error) => e);
    expect(error).to.be.instanceOf(MoveTaskUnsupportedError);
    expect((error as Error).message).to.match(/does not support SQS message move tasks .*Run without --native/);
  });

  it('tells "no such action" apart from other failures', () => {
    const moto = Object.assign(new SyntaxError('Unexpected token \'<\'\n  Deserialization error: to see the raw response…'), {
      $metadata: { httpStatusCode: 500 },
    });
    expect(unsupportedBecause(moto)).to.match(/HTTP 500 with a page that is not an SQS response/);
    expect(unsupportedBecause({ name: 'InternalFailure', $metadata: { httpStatusCode: 501 } })).to.match(/501/);
    expect(unsupportedBecause({ name: 'InvalidAction', $metadata: { httpStatusCode: 400 } })).to.match(/InvalidAction/);
    // A real SQS error is not "unsupported": it is reported as it is.
    expect(unsupportedBecause({ name: 'InternalError', message: 'We encountered an internal error', $metadata: { httpStatusCode: 500 } })).to.equal(
      undefined,
    );
    expect(unsupportedBecause({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })).to.equal(undefined);
  });

  it('refuses a rate SQS would refuse, before calling it', async () => {
    const { sqs, calls } = stubSqs({});
    const error = await moveWithTask(sqs, { ...options, rate: 501 }).catch((e: Error) => e);
    expect((error as Error).message).to.match(/whole number from 1 to 500/);
    expect(calls).to.deep.equal([]);
  });
});
