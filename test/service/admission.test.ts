import { expect } from 'chai';
import { placeBySize, SMALL_FILE_BYTES } from '../../src/service/admission.js';

describe('admission by size: where a file converts', () => {
  it('a small file is read by the main thread and converted from bytes; a larger one streams on a worker; both weigh their size', () => {
    expect(placeBySize('a/b.csv', 20_000)).to.deep.equal({ lane: 'small', weight: 20_000, light: true });
    expect(placeBySize('a/b.CSV', SMALL_FILE_BYTES)).to.deep.equal({ lane: 'small', weight: SMALL_FILE_BYTES, light: true });
    expect(placeBySize('a/b.csv', SMALL_FILE_BYTES + 1)).to.deep.equal({ lane: 'stream', weight: SMALL_FILE_BYTES + 1 });
  });

  it('a gzip weighs more than its stored size and is never light (what it holds is unknown until it is read)', () => {
    expect(placeBySize('a/b.csv.gz', 1_000)).to.deep.equal({ lane: 'small', weight: 8_000, light: false });
    expect(placeBySize('a/b.csv.GZ', 2 * SMALL_FILE_BYTES)).to.deep.equal({ lane: 'stream', weight: 16 * SMALL_FILE_BYTES });
  });

  it('without a size in the event, the GET decides (its Content-Length, before the body is read)', () => {
    expect(placeBySize('a/b.csv', undefined)).to.deep.equal({ lane: 'unknown' });
  });
});
