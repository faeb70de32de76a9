import { expect } from 'chai';
import { judge, type OutputSeen } from '../../src/backfill/plan.js';

const at = (iso: string) => new Date(iso);
const source = { etag: '"abc"', lastModified: at('2026-01-01T10:00:00.000Z') };
const listed = (iso: string): OutputSeen => ({ state: 'listed', lastModified: at(iso) });
const headed = (iso: string, sourceEtag?: string): OutputSeen => ({ state: 'headed', lastModified: at(iso), sourceEtag });

describe('backfill: current, missing or stale', () => {
  it('every output listed and newer than the source: current, without a HEAD', () => {
    expect(judge(source, [listed('2026-01-01T10:00:01Z'), listed('2026-01-02T00:00:00Z')])).to.deep.equal({ verdict: 'current' });
  });

  it('an output not in the listing: missing, whatever the others say', () => {
    expect(judge(source, [{ state: 'absent' }, listed('2026-01-01T11:00:00Z')])).to.deep.equal({ verdict: 'missing' });
    expect(judge(source, [listed('2026-01-01T09:00:00Z'), { state: 'absent' }])).to.deep.equal({ verdict: 'missing' });
    expect(judge(source, [{ state: 'unlisted' }, { state: 'absent' }])).to.deep.equal({ verdict: 'missing' });
  });

  it('an output older than the source was made from an earlier version: stale, without a HEAD', () => {
    expect(judge(source, [listed('2026-01-01T09:59:59Z'), listed('2026-01-01T10:00:05Z')])).to.deep.equal({ verdict: 'stale' });
    expect(judge(source, [listed('2026-01-01T10:00:00Z'), listed('2025-12-31T00:00:00Z')])).to.deep.equal({ verdict: 'stale' });
  });

  it('an output written in the same second as its source is undecided: only that one is HEADed', () => {
    expect(judge(source, [listed('2026-01-01T10:00:05Z'), listed('2026-01-01T10:00:00.999Z')])).to.deep.equal({ check: [1] });
    // Listings differ in precision; seconds are what all of them show.
    expect(judge({ ...source, lastModified: at('2026-01-01T10:00:00.900Z') }, [listed('2026-01-01T10:00:00.100Z')])).to.deep.equal({ check: [0] });
  });

  it('an output the listing could not answer for (out of listing order) is HEADed', () => {
    expect(judge(source, [{ state: 'unlisted' }, listed('2026-01-01T11:00:00Z')])).to.deep.equal({ check: [0] });
  });

  it('a HEAD decides by the source-etag the service wrote, quoted or not', () => {
    expect(judge(source, [headed('2026-01-01T10:00:00Z', 'abc'), listed('2026-01-01T11:00:00Z')])).to.deep.equal({ verdict: 'current' });
    expect(judge(source, [headed('2026-01-01T10:00:00Z', '"abc"')])).to.deep.equal({ verdict: 'current' });
    expect(judge(source, [headed('2026-01-01T12:00:00Z', 'older-version')])).to.deep.equal({ verdict: 'stale' });
  });

  it('a HEADed output without source-etag is current only when written after the source', () => {
    expect(judge(source, [headed('2026-01-01T10:00:01Z')])).to.deep.equal({ verdict: 'current' });
    expect(judge(source, [headed('2026-01-01T10:00:00Z')])).to.deep.equal({ verdict: 'stale' });
  });

  it('a HEAD that found nothing makes it missing', () => {
    expect(judge(source, [{ state: 'absent' }, headed('2026-01-01T10:00:00Z', 'abc')])).to.deep.equal({ verdict: 'missing' });
  });
});
