import { expect } from 'chai';
import { GetMetricStatisticsCommand, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { pino } from 'pino';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { MetricName, MetricsBuffer } from '../../src/metrics/cloudwatch.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

describe('MetricsBuffer against the CloudWatch emulator', function () {
  this.timeout(120_000);
  let aws: AwsClients;

  before(async () => {
    aws = createAwsClients({ endpoint: (await sharedEmulator()).endpoint });
  });

  after(() => aws?.destroy());

  async function statistics(namespace: string, name: string, service: string) {
    const now = Date.now();
    const answer = await aws.cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: namespace,
        MetricName: name,
        Dimensions: [{ Name: 'Service', Value: service }],
        StartTime: new Date(now - 10 * 60_000),
        EndTime: new Date(now + 60_000),
        Period: 3600,
        Statistics: ['Sum', 'SampleCount', 'Minimum', 'Maximum'],
      }),
    );
    const points = answer.Datapoints ?? [];
    return {
      sum: points.reduce((total, p) => total + (p.Sum ?? 0), 0),
      samples: points.reduce((total, p) => total + (p.SampleCount ?? 0), 0),
      min: Math.min(...points.map((p) => p.Minimum ?? Infinity)),
      max: Math.max(...points.map((p) => p.Maximum ?? -Infinity)),
    };
  }

  it('publishes counters, observations and gauges that CloudWatch reads back', async () => {
    const namespace = `Test/${uniqueName('metrics')}`;
    const service = 'emulator-test';
    const metrics = new MetricsBuffer({
      client: aws.cloudwatch,
      namespace,
      dimensions: { Service: service },
      flushSeconds: 3600,
      logger: pino({ level: 'warn' }),
      enabled: true,
    });
    for (let i = 0; i < 7; i++) metrics.count(MetricName.FilesConverted);
    metrics.count(MetricName.RowsConverted, 1200);
    metrics.count(MetricName.RowsConverted, 800);
    for (const ms of [5, 5, 12, 40]) metrics.observe(MetricName.ConversionMs, ms, 'Milliseconds');
    metrics.gauge(MetricName.InFlight, 3);
    await metrics.flush();
    metrics.count(MetricName.FilesConverted, 2);
    await metrics.close();

    const listed = await aws.cloudwatch.send(new ListMetricsCommand({ Namespace: namespace }));
    const names = new Set((listed.Metrics ?? []).map((m) => m.MetricName));
    expect([...names]).to.have.members(['FilesConverted', 'RowsConverted', 'ConversionMs', 'InFlight']);
    for (const metric of listed.Metrics ?? []) expect(metric.Dimensions).to.deep.equal([{ Name: 'Service', Value: service }]);

    expect(await statistics(namespace, 'FilesConverted', service)).to.deep.include({ sum: 9 });
    expect(await statistics(namespace, 'RowsConverted', service)).to.deep.include({ sum: 2000, samples: 2 });
    expect(await statistics(namespace, 'ConversionMs', service)).to.deep.equal({ sum: 62, samples: 4, min: 5, max: 40 });
    // Set once, then sampled again by the second flush because it had not changed.
    expect(await statistics(namespace, 'InFlight', service)).to.deep.include({ samples: 2, max: 3 });
    expect(metrics.snapshot()).to.deep.equal({ FilesConverted: 9, RowsConverted: 2000, ConversionMs: 62, InFlight: 3 });
  });

  it('publishes a window too large for one datum or one request', async () => {
    const namespace = `Test/${uniqueName('metrics-big')}`;
    const metrics = new MetricsBuffer({
      client: aws.cloudwatch,
      namespace,
      dimensions: { Service: 'big' },
      flushSeconds: 3600,
      logger: pino({ level: 'warn' }),
      enabled: true,
    });
    // 400 distinct sizes → three Values/Counts datums for one metric.
    for (let i = 1; i <= 400; i++) metrics.observe(MetricName.BytesOut, i, 'Bytes');
    // 1100 metric names → more than one request.
    for (let i = 0; i < 1100; i++) metrics.count(`Synthetic${i}`);
    await metrics.close();
    expect(metrics.snapshot().MetricsFlushFailures).to.equal(undefined);
    expect(await statistics(namespace, 'BytesOut', 'big')).to.deep.equal({ sum: (400 * 401) / 2, samples: 400, min: 1, max: 400 });
    expect(await statistics(namespace, 'Synthetic1099', 'big')).to.deep.include({ sum: 1 });
  });
});
