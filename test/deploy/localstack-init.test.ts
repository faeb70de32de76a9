/**
 * docker/localstack/init-pipeline.py (LocalStack's ready.d hook, and the moto profile's init) must
 * leave the emulator as `setup` does. Both run against the test emulator and the results are compared.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetBucketNotificationConfigurationCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { setupPipeline } from '../../src/cli/setup.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';
import { PYTHON } from '../support/python.js';
import { REPO_ROOT } from './deploy-files.js';

const run = promisify(execFile);

interface Names {
  inputBucket: string;
  outputBucket: string;
  queue: string;
}

describe('the compose init hook creates what `setup` creates', function () {
  this.timeout(60_000);
  let clients: AwsClients;
  let endpoint: string;

  before(async () => {
    endpoint = (await sharedEmulator()).endpoint;
    clients = createAwsClients({ endpoint });
  });

  after(() => clients?.destroy());

  function runInitScript(names: Names): Promise<{ stdout: string }> {
    return run(PYTHON, [join(REPO_ROOT, 'docker/localstack/init-pipeline.py')], {
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: endpoint,
        S3CC_INPUT_BUCKET: names.inputBucket,
        S3CC_OUTPUT_BUCKET: names.outputBucket,
        S3CC_QUEUE: names.queue,
      },
    });
  }

  /** What a pipeline consists of, with its names replaced by their roles so two pipelines compare. */
  async function describePipeline(names: Names) {
    const anonymise = (text: string) =>
      text
        .replaceAll(names.inputBucket, '<input>')
        .replaceAll(names.outputBucket, '<output>')
        .replaceAll(`${names.queue}-dlq`, '<dlq>')
        .replaceAll(names.queue, '<queue>');
    for (const bucket of [names.inputBucket, names.outputBucket]) await clients.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    const attributes = async (name: string) => {
      const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      const { Attributes = {} } = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
      return Attributes;
    };
    const queue = await attributes(names.queue);
    const dlq = await attributes(`${names.queue}-dlq`);
    const { QueueConfigurations = [] } = await clients.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: names.inputBucket }));
    return {
      redrivePolicy: JSON.parse(anonymise(queue.RedrivePolicy ?? '{}')),
      policy: JSON.parse(anonymise(queue.Policy ?? '{}')),
      visibilityTimeout: queue.VisibilityTimeout,
      messages: queue.ApproximateNumberOfMessages,
      dlqRetention: dlq.MessageRetentionPeriod,
      dlqRedrive: dlq.RedrivePolicy,
      notification: JSON.parse(anonymise(JSON.stringify(QueueConfigurations))),
    };
  }

  it('same buckets, queues, redrive policy, queue policy and notification; idempotent: a second run sends no TestEvent', async () => {
    const bySetup: Names = { inputBucket: uniqueName('init-setup-in'), outputBucket: uniqueName('init-setup-out'), queue: uniqueName('init-setup-q') };
    const byHook: Names = { inputBucket: uniqueName('init-hook-in'), outputBucket: uniqueName('init-hook-out'), queue: uniqueName('init-hook-q') };
    await setupPipeline(clients, bySetup);
    const { stdout } = await runInitScript(byHook);
    expect(JSON.parse(stdout)).to.include({ inputBucket: byHook.inputBucket, outputBucket: byHook.outputBucket });
    // S3 sends TestEvents as it accepts a notification configuration: moto one, LocalStack one per rule.
    const afterOneRun = (await describePipeline(bySetup)).messages;
    expect(Number(afterOneRun)).to.be.at.least(1);

    await setupPipeline(clients, bySetup);
    await runInitScript(byHook);
    const expected = await describePipeline(bySetup);
    expect(expected.redrivePolicy.maxReceiveCount).to.equal(5);
    expect(expected.messages, 'the second run left the notification alone: no more TestEvents').to.equal(afterOneRun);
    expect(await describePipeline(byHook)).to.deep.equal(expected);
  });
});
