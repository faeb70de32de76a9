import { expect } from 'chai';
import type { MetricDatum } from '@aws-sdk/client-cloudwatch';
import {
  chunkDatums,
  datumBytes,
  MAX_DATUMS_PER_REQUEST,
  MAX_DISTINCT_VALUES,
  MAX_REQUEST_BYTES,
  MAX_VALUES_PER_DATUM,
  MetricAggregate,
} from '../../src/metrics/datums.js';

const DIMENSIONS = [{ Name: 'Service', Value: 'test' }];
const NOW = new Date('2026-11-29T12:00:00Z');

function sum(datums: MetricDatum[]): number {
  return datums.reduce(
    (total, d) =>
      total + (d.StatisticValues?.Sum ?? (d.Values ?? []).reduce((s, v, i) => s + v * (d.Counts?.[i] ?? 1), 0)),
    0,
  );
}

describe('metric datums', () => {
  it('folds repeated values into one value with a count', () => {
    const aggregate = new MetricAggregate('FilesConverted', 'Count');
    for (let i = 0; i < 1000; i++) aggregate.add(1);
    expect(aggregate.toDatums(DIMENSIONS, NOW)).to.deep.equal([
      { MetricName: 'FilesConverted', Unit: 'Count', Dimensions: DIMENSIONS, Timestamp: NOW, StorageResolution: 60, Values: [1], Counts: [1000] },
    ]);
  });

  it('splits more than 150 distinct values over several datums', () => {
    const aggregate = new MetricAggregate('ConversionMs', 'Milliseconds');
    for (let i = 0; i < 400; i++) aggregate.add(i);
    aggregate.add(7);
    const datums = aggregate.toDatums(DIMENSIONS, NOW);
    expect(datums.map((d) => d.Values?.length)).to.deep.equal([150, 150, 100]);
    expect(datums.every((d) => d.Values?.length === d.Counts?.length)).to.equal(true);
    expect(datums[0].Counts?.[7]).to.equal(2);
    expect(sum(datums)).to.equal((399 * 400) / 2 + 7);
  });

  it('falls back to exact statistics past the distinct-value cap', () => {
    const aggregate = new MetricAggregate('BytesIn', 'Bytes');
    const extra = 500;
    for (let i = 0; i < MAX_DISTINCT_VALUES + extra; i++) aggregate.add(i + 0.5);
    const datums = aggregate.toDatums(DIMENSIONS, NOW);
    expect(datums).to.have.length(MAX_DISTINCT_VALUES / MAX_VALUES_PER_DATUM + 1);
    expect(datums.at(-1)?.StatisticValues).to.deep.equal({
      SampleCount: extra,
      Sum: Array.from({ length: extra }, (_, i) => MAX_DISTINCT_VALUES + i + 0.5).reduce((a, b) => a + b, 0),
      Minimum: MAX_DISTINCT_VALUES + 0.5,
      Maximum: MAX_DISTINCT_VALUES + extra - 0.5,
    });
    expect(datums.at(-1)).to.not.have.property('Values');
  });

  it('puts at most 1000 datums in a request', () => {
    const datums: MetricDatum[] = Array.from({ length: 2500 }, (_, i) => ({ MetricName: `M${i}`, Values: [1], Counts: [1] }));
    const chunks = chunkDatums(datums);
    expect(chunks.map((c) => c.length)).to.deep.equal([MAX_DATUMS_PER_REQUEST, MAX_DATUMS_PER_REQUEST, 500]);
    expect(chunks.flat()).to.deep.equal(datums);
  });

  it('keeps each request under the payload budget', () => {
    const aggregate = new MetricAggregate('EndToEndLatencyMs', 'Milliseconds');
    for (let i = 0; i < MAX_DISTINCT_VALUES; i++) aggregate.add(123_456.789_012 + i);
    const full = aggregate.toDatums(DIMENSIONS, NOW);
    const datums = Array.from({ length: 40 }, () => full).flat();
    const chunks = chunkDatums(datums);
    expect(chunks.length).to.be.greaterThan(1);
    for (const chunk of chunks) {
      expect(chunk.reduce((bytes, d) => bytes + datumBytes(d) + 1, 0)).to.be.at.most(MAX_REQUEST_BYTES);
    }
    expect(chunks.flat()).to.have.length(datums.length);
  });

  it('sends nothing when there is nothing', () => {
    expect(chunkDatums([])).to.deep.equal([]);
  });
});
