import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { CloudWatchClient, MetricDatum, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { MAX_RETAINED_DATUMS, MetricName, MetricsBuffer, type MetricsBufferOptions } from '../../src/metrics/cloudwatch.js';

type Send = (command: PutMetricDataCommand, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;

/** A CloudWatch client that records each request and answers with `behaviour`. */
function fakeClient(behaviour: Send = async () => ({})) {
  const requests: { Namespace?: string; MetricData: MetricDatum[] }[] = [];
  const client = {
    send: (command: PutMetricDataCommand, options?: { abortSignal?: AbortSignal }) => {
      requests.push({ Namespace: command.input.Namespace, MetricData: command.input.MetricData ?? [] });
      return behaviour(command, options);
    },
  } as unknown as Pick<CloudWatchClient, 'send'>;
  return { client, requests };
}

/** A pino logger whose lines land in `lines`. */
function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function buffer(overrides: Partial<MetricsBufferOptions> & Pick<MetricsBufferOptions, 'client'>) {
  const { logger, lines } = memoryLogger();
  const metrics = new MetricsBuffer({
    namespace: 'Test',
    dimensions: { Service: 'unit' },
    flushSeconds: 3600,
    logger,
    enabled: true,
    ...overrides,
  });
  return { metrics, lines };
}

function throttled(): Error {
  return Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } });
}

function refused(): Error {
  return Object.assign(new Error('bad value'), { name: 'InvalidParameterValue', $metadata: { httpStatusCode: 400 } });
}

describe('MetricsBuffer', () => {
  it('sends a busy window as one request of aggregated datums', async () => {
    const { client, requests } = fakeClient();
    const { metrics } = buffer({ client });
    for (let i = 0; i < 500; i++) {
      metrics.count(MetricName.FilesConverted);
      metrics.count(MetricName.RowsConverted, 1000);
      metrics.observe(MetricName.ConversionMs, i % 10, 'Milliseconds');
    }
    await metrics.flush();
    expect(requests).to.have.length(1);
    expect(requests[0].Namespace).to.equal('Test');
    const byName = new Map(requests[0].MetricData.map((d) => [d.MetricName, d]));
    expect(byName.get('FilesConverted')).to.deep.include({ Unit: 'Count', Values: [1], Counts: [500], StorageResolution: 60 });
    expect(byName.get('FilesConverted')?.Dimensions).to.deep.equal([{ Name: 'Service', Value: 'unit' }]);
    expect(byName.get('RowsConverted')).to.deep.include({ Values: [1000], Counts: [500] });
    expect(byName.get('ConversionMs')).to.deep.include({ Unit: 'Milliseconds', Counts: Array(10).fill(50) });
  });

  it('sends nothing when nothing was recorded, and each observation only once', async () => {
    const { client, requests } = fakeClient();
    const { metrics } = buffer({ client });
    await metrics.flush();
    metrics.count(MetricName.MessagesReceived, 3);
    await metrics.flush();
    await metrics.flush();
    expect(requests).to.have.length(1);
  });

  it('keeps local totals: sums, and the current value of gauges', async () => {
    const { client } = fakeClient();
    const { metrics } = buffer({ client });
    metrics.count(MetricName.FilesConverted);
    metrics.count(MetricName.FilesConverted, 2);
    metrics.observe(MetricName.BytesIn, 100, 'Bytes');
    metrics.observe(MetricName.BytesIn, 50, 'Bytes');
    metrics.gauge(MetricName.InFlight, 4);
    metrics.gauge(MetricName.InFlight, 3);
    await metrics.flush();
    metrics.count(MetricName.FilesConverted);
    expect(metrics.snapshot()).to.deep.equal({ FilesConverted: 4, BytesIn: 150, InFlight: 3 });
  });

  it('samples every gauge change, and an unchanged gauge once per flush', async () => {
    const { client, requests } = fakeClient();
    const { metrics } = buffer({ client });
    metrics.gauge(MetricName.InFlight, 2);
    metrics.gauge(MetricName.InFlight, 5);
    await metrics.flush();
    await metrics.flush();
    expect(requests[0].MetricData[0]).to.deep.include({ MetricName: 'InFlight', Values: [2, 5], Counts: [1, 1] });
    expect(requests[1].MetricData[0]).to.deep.include({ MetricName: 'InFlight', Values: [5], Counts: [1] });
  });

  it('flushes on its timer and on close, then stops', async () => {
    const { client, requests } = fakeClient();
    const { metrics } = buffer({ client, flushSeconds: 0.02 });
    metrics.count(MetricName.FilesSkipped);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(requests).to.have.length(1);
    metrics.count(MetricName.FilesGone);
    await metrics.close();
    expect(requests).to.have.length(2);
    expect(requests[1].MetricData[0].MetricName).to.equal('FilesGone');
    await metrics.close();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(requests).to.have.length(2);
  });

  it('sends nothing when disabled but still keeps totals', async () => {
    const { client, requests } = fakeClient();
    const { metrics } = buffer({ client, enabled: false, flushSeconds: 0.01 });
    metrics.count(MetricName.FilesConverted);
    metrics.gauge(MetricName.InFlight, 1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await metrics.flush();
    await metrics.close();
    expect(requests).to.have.length(0);
    expect(metrics.snapshot()).to.deep.equal({ FilesConverted: 1, InFlight: 1 });
  });

  it('drops values CloudWatch would refuse, with one warning per metric', async () => {
    const { client, requests } = fakeClient();
    const { metrics, lines } = buffer({ client });
    metrics.observe(MetricName.ConversionMs, Number.NaN, 'Milliseconds');
    metrics.observe(MetricName.ConversionMs, Number.POSITIVE_INFINITY, 'Milliseconds');
    metrics.observe(MetricName.ConversionMs, 12, 'Milliseconds');
    await metrics.flush();
    expect(requests[0].MetricData[0].Values).to.deep.equal([12]);
    expect(lines.filter((l) => l.metric === 'ConversionMs')).to.have.length(1);
  });

  describe('when CloudWatch fails', () => {
    for (const [how, send] of [
      ['throws synchronously', () => {
        throw new Error('boom');
      }],
      ['rejects', async () => {
        throw new Error('socket hang up');
      }],
    ] as [string, Send][]) {
      it(`never rejects when the client ${how}, and logs at warn`, async () => {
        const { client } = fakeClient(send);
        const { metrics, lines } = buffer({ client, flushSeconds: 0.01 });
        metrics.count(MetricName.FilesConverted);
        await new Promise((resolve) => setTimeout(resolve, 30));
        metrics.count(MetricName.FilesFailed);
        await metrics.flush();
        metrics.count(MetricName.FilesDeadLettered);
        await metrics.close();
        const warnings = lines.filter((l) => l.level === 40);
        expect(warnings.length).to.be.greaterThan(0);
        expect(warnings[0]).to.have.nested.property('err.message');
        expect(metrics.snapshot().MetricsFlushFailures).to.be.greaterThan(0);
        expect(metrics.snapshot().FilesConverted).to.equal(1);
      });
    }

    it('keeps throttled data and sends it with the next flush', async () => {
      let fail = true;
      const { client, requests } = fakeClient(async () => {
        if (fail) throw throttled();
        return {};
      });
      const { metrics, lines } = buffer({ client });
      metrics.count(MetricName.FilesConverted, 2);
      await metrics.flush();
      fail = false;
      metrics.count(MetricName.FilesConverted, 3);
      await metrics.flush();
      expect(requests).to.have.length(2);
      const sent = requests[1].MetricData.filter((d) => d.MetricName === 'FilesConverted');
      expect(sent.flatMap((d) => d.Values)).to.have.members([2, 3]);
      expect(lines.find((l) => l.level === 40)?.msg).to.match(/keeping the data/);
      expect(metrics.snapshot().MetricsFlushFailures).to.equal(1);
    });

    it('drops data CloudWatch refuses instead of resending it forever', async () => {
      let fail = true;
      const { client, requests } = fakeClient(async () => {
        if (fail) throw refused();
        return {};
      });
      const { metrics, lines } = buffer({ client });
      metrics.count(MetricName.FilesConverted, 2);
      await metrics.flush();
      fail = false;
      metrics.count(MetricName.FilesConverted, 3);
      await metrics.flush();
      expect(requests[1].MetricData.flatMap((d) => d.Values)).to.deep.equal([3]);
      expect(lines.find((l) => l.level === 40)).to.deep.include({ msg: 'metrics flush refused; data dropped', dropped: 1 });
    });

    it('keeps at most MAX_RETAINED_DATUMS, dropping the oldest', async () => {
      let down = true;
      const { client, requests } = fakeClient(async () => {
        if (down) throw Object.assign(new Error('unavailable'), { $metadata: { httpStatusCode: 503 } });
        return {};
      });
      const { metrics, lines } = buffer({ client });
      for (let round = 0; round < 3; round++) {
        // 1000 distinct metric names: 1000 datums, one full request, per round.
        for (let i = 0; i < 1000; i++) metrics.count(`Round${round}Metric${i}`);
        await metrics.flush();
      }
      expect(lines.filter((l) => l.level === 40).at(-1)).to.deep.include({ retained: MAX_RETAINED_DATUMS, dropped: 1000 });
      down = false;
      const before = requests.length;
      await metrics.flush();
      const resent = requests.slice(before).flatMap((r) => r.MetricData);
      expect(requests.slice(before).map((r) => r.MetricData.length)).to.deep.equal([1000, 1000]);
      expect(resent[0].MetricName).to.equal('Round1Metric0');
      expect(resent.at(-1)?.MetricName).to.equal('Round2Metric999');
    });

    it('gives up on a request that hangs, so close() returns', async () => {
      const { client } = fakeClient(
        (_command, options) =>
          new Promise((_, reject) => {
            options?.abortSignal?.addEventListener('abort', () => reject(new Error('aborted')));
          }),
      );
      const { metrics, lines } = buffer({ client, sendTimeoutMs: 50 });
      metrics.count(MetricName.FilesConverted);
      const started = Date.now();
      await metrics.close();
      expect(Date.now() - started).to.be.below(2_000);
      expect(lines.find((l) => l.level === 40)?.msg).to.match(/keeping the data/);
    });
  });
});
