import { expect } from 'chai';
import {
  compareSequencers,
  holdsVersion,
  judgeOutput,
  outputMetadata,
  recordedSource,
  SOURCE_BUCKET,
  SOURCE_ETAG,
  SOURCE_KEY,
  SOURCE_SEQUENCER,
  type SourceVersion,
} from '../../src/versions/metadata.js';

const ours: SourceVersion = { bucket: 'in', key: 'sales/2024.csv', etag: '"abc"', sequencer: '0055AED6DCD90281E5' };

describe('versions: which source version an output holds', () => {
  it('compares sequencers as hex after left-padding the shorter with zeros', () => {
    expect(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E6')).to.be.below(0);
    expect(compareSequencers('FF', '0100')).to.be.below(0);
    expect(compareSequencers('100', 'ff')).to.be.above(0);
    expect(compareSequencers('00ab', 'AB')).to.equal(0);
  });

  it('records the bare ETag, the bucket, the key (ASCII, readable) and the sequencer; reads them back', () => {
    const key = 'odd names/ünï çødé+1%.csv';
    const metadata = outputMetadata({ ...ours, key });
    expect(metadata[SOURCE_ETAG]).to.equal('abc');
    expect(metadata[SOURCE_BUCKET]).to.equal('in');
    expect(metadata[SOURCE_SEQUENCER]).to.equal(ours.sequencer);
    expect(metadata[SOURCE_KEY]).to.match(/^[\x21-\x7e]+$/);
    expect(metadata[SOURCE_KEY]).to.include('odd%20names/');
    expect(recordedSource(metadata)).to.deep.equal({ bucket: 'in', key, etag: 'abc', sequencer: ours.sequencer });
  });

  it('leaves the name and the sequencer out when they would pass S3’s 2 KB of metadata, keeping the ETag', () => {
    const key = `${'é'.repeat(500)}.csv`; // 1 004 bytes, ~3 000 percent-encoded
    expect(outputMetadata({ ...ours, key })).to.deep.equal({ [SOURCE_ETAG]: 'abc' });
  });

  it('judges an output by the source it names, then the sequencers, then the ETag', () => {
    const recorded = recordedSource(outputMetadata(ours));
    expect(judgeOutput(recorded, ours)).to.equal('this-version');
    expect(judgeOutput(recorded, { ...ours, etag: 'def', sequencer: '0055AED6DCD90281F0' })).to.equal('older');
    expect(judgeOutput(recorded, { ...ours, etag: 'def', sequencer: '0055AED6DCD90281A0' })).to.equal('newer');
    // X → Y → X: the same ETag uploaded again is a newer version by sequencer, so it replaces the outputs.
    expect(judgeOutput(recorded, { ...ours, sequencer: '0055AED6DCD90281F0' })).to.equal('older');
    // Without sequencers (moto), only the ETag: another version, whose order the source's HEAD decides.
    const { sequencer: _drop, ...noSequencer } = ours;
    expect(judgeOutput(recorded, { ...noSequencer, etag: 'def' })).to.equal('other-version');
    expect(judgeOutput(recordedSource(outputMetadata(noSequencer)), noSequencer)).to.equal('this-version');
    // x.csv and x.csv.gz (or two buckets) mapping to the same outputs.
    expect(judgeOutput(recorded, { ...ours, key: 'sales/2024.csv.gz' })).to.equal('other-source');
    expect(judgeOutput(recorded, { ...ours, bucket: 'in-2' })).to.equal('other-source');
  });

  it('reads outputs written before names were recorded by their ETag alone, never by a sequencer', () => {
    const legacy = { [SOURCE_ETAG]: 'abc', [SOURCE_SEQUENCER]: 'FFFFFFFF' };
    expect(judgeOutput(recordedSource(legacy), ours)).to.equal('this-version');
    expect(judgeOutput(recordedSource(legacy), { ...ours, etag: 'def' })).to.equal('other-version');
    expect(holdsVersion({ [SOURCE_ETAG]: 'abc' }, ours)).to.equal(true);
    expect(holdsVersion({}, ours)).to.equal(false);
  });
});
