import { expect } from 'chai';
import { parseModifiedSince } from '../../src/backfill/since.js';

const now = new Date('2026-06-15T12:00:00.000Z');
const iso = (text: string) => {
  const parsed = parseModifiedSince(text, now);
  if (!(parsed instanceof Date)) throw new Error(parsed.problem);
  return parsed.toISOString();
};

describe('backfill --modified-since', () => {
  it('reads ISO 8601 dates and date-times; no offset means UTC', () => {
    expect(iso('2026-05-01')).to.equal('2026-05-01T00:00:00.000Z');
    expect(iso('2026-05-01T08:30')).to.equal('2026-05-01T08:30:00.000Z');
    expect(iso('2026-05-01T08:30:15.250Z')).to.equal('2026-05-01T08:30:15.250Z');
    expect(iso('2026-05-01 08:30:15')).to.equal('2026-05-01T08:30:15.000Z');
    expect(iso('2026-05-01T08:30:00+02:00')).to.equal('2026-05-01T06:30:00.000Z');
    expect(iso('2026-05-01T08:30:00-0130')).to.equal('2026-05-01T10:00:00.000Z');
  });

  it('reads ISO 8601 durations as that long before now', () => {
    expect(iso('P2D')).to.equal('2026-06-13T12:00:00.000Z');
    expect(iso('PT6H')).to.equal('2026-06-15T06:00:00.000Z');
    expect(iso('P1DT1H30M')).to.equal('2026-06-14T10:30:00.000Z');
    expect(iso('P1W')).to.equal('2026-06-08T12:00:00.000Z');
    expect(iso('pt90s')).to.equal('2026-06-15T11:58:30.000Z');
  });

  for (const bad of ['', 'yesterday', '2026-02-30', '2026-13-01', '2026-05-01T24:00', 'P', 'PT', '1D', '05/01/2026', '2026-05-01T08:30:00+2']) {
    it(`refuses ${JSON.stringify(bad)} with what it expects`, () => {
      const parsed = parseModifiedSince(bad, now);
      expect(parsed).not.to.be.instanceOf(Date);
      expect((parsed as { problem: string }).problem).to.match(/ISO 8601/);
    });
  }
});
