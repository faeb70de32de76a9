/**
 * The SDK's own retries are the first line of defence in a storm: with 20% of calls failing and
 * 3 attempts per call, fewer than 1% of calls should fail. They must keep working for the whole
 * life of a client, including through the calls the service makes most under a storm of new
 * files: HEADs of outputs that do not exist yet (the duplicate check), which answer 404.
 *
 * Sequential calls and a fixed proxy seed make this test deterministic.
 */
import { expect } from 'chai';
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

const CALLS = 250;
const FAULT_RATE = 0.2;

describe('reliability: SDK retries through a long storm', function () {
  this.timeout(120_000);
  let direct: AwsClients;
  let proxied: AwsClients;
  let proxy: FaultProxy;

  before(async () => {
    const { endpoint } = await sharedEmulator();
    direct = createAwsClients({ endpoint });
    proxy = await startFaultProxy(endpoint, { seed: 20_240_101 });
    // The client factory the service's worker threads use.
    proxied = createAwsClients({ endpoint: proxy.endpoint });
  });

  after(async () => {
    proxied?.destroy();
    direct?.destroy();
    await proxy?.close();
  });

  it(`keeps retrying after ${CALLS} faulted checks of outputs that do not exist yet`, async () => {
    const bucket = uniqueName('sdk-retries');
    await direct.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // Resets: quick SDK backoff (throttling backs off from 1 s), and the costliest for the quota.
    proxy.configure({ rates: { s3: FAULT_RATE }, kinds: { s3: ['reset'] } });
    const failures: { call: number; name: string; attempts?: number }[] = [];
    for (let call = 1; call <= CALLS; call++) {
      try {
        await proxied.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `parquet/new-file-${call}.parquet` }));
      } catch (error) {
        const e = error as { name?: string; $metadata?: { attempts?: number } };
        if (e.name !== 'NotFound') failures.push({ call, name: e.name ?? '?', attempts: e.$metadata?.attempts });
      }
    }
    const faults = proxy.totalFaults();
    const unretried = failures.filter((failure) => failure.attempts === 1);
    console.log(
      `      ${CALLS} calls, ${faults} faults injected, ${failures.length} calls failed ` +
        `(${unretried.length} without a single retry, the first at call ${unretried[0]?.call ?? '-'})`,
    );
    // With 3 attempts a call fails when all three are faulted: 0.8% expected, so 3% is generous.
    expect(unretried.length, `calls that failed on their first fault (the retry quota ran dry), from call ${unretried[0]?.call}`).to.equal(0);
    expect(failures.length).to.be.below(CALLS * 0.03);
  });
});
