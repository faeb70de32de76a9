import { expect } from 'chai';
import { INLINE_MAX_BYTES, placeBySize } from '../../src/service/admission.js';

describe('admission by size: where a file converts', () => {
  it('a small plain CSV converts inline on the main thread; a larger one on a worker thread, weighed by its size', () => {
    expect(placeBySize('a/b.csv', 20_000)).to.deep.equal({ lane: 'inline' });
    expect(placeBySize('a/b.CSV', INLINE_MAX_BYTES)).to.deep.equal({ lane: 'inline' });
    expect(placeBySize('a/b.csv', INLINE_MAX_BYTES + 1)).to.deep.equal({ lane: 'thread', weight: INLINE_MAX_BYTES + 1 });
  });

  it('a gzip never converts inline (a bomb would hold the main thread) and weighs more than its stored size', () => {
    expect(placeBySize('a/b.csv.gz', 1_000)).to.deep.equal({ lane: 'thread', weight: 8_000 });
    expect(placeBySize('a/b.csv.GZ', undefined)).to.deep.equal({ lane: 'thread', weight: Number.POSITIVE_INFINITY });
  });

  it('without a size in the event, the GET decides (its Content-Length, before the body is read)', () => {
    expect(placeBySize('a/b.csv', undefined)).to.deep.equal({ lane: 'unknown' });
  });

  it('the inline limit can be lowered to send every file to the worker threads', () => {
    expect(placeBySize('a/b.csv', 1, 0)).to.deep.equal({ lane: 'thread', weight: 1 });
  });
});
