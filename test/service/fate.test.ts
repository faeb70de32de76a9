/** The fate of a message as a pure function of its outcomes: no SQS needed. */
import { expect } from 'chai';
import { backoffSeconds, decideFate, type FateInput, type ObjectResult } from '../../src/service/fate.js';

const base: Omit<FateInput, 'results'> = { attempt: 1, maxReceiveCount: 5, cutShort: false, backoff: { baseSeconds: 10, maxSeconds: 900 }, random: 0.5 };
const object = { bucket: 'in', key: 'a.csv' };
const transient: ObjectResult = { kind: 'failed', failure: { kind: 'transient', code: 'THROTTLED', message: 'slow down' }, object };
const permanent: ObjectResult = { kind: 'failed', failure: { kind: 'permanent', code: 'RAGGED_ROW', message: 'line 3 has 2 fields' }, object: { bucket: 'in', key: 'b.csv' } };

describe('the fate of a message', () => {
  it('is acknowledged when every object converted, was a repeat, superseded, gone or not ours', () => {
    for (const kind of ['converted', 'duplicate', 'superseded', 'gone', 'skipped'] as const) {
      expect(decideFate({ ...base, results: [{ kind }] }), kind).to.deep.equal({ kind: 'ack' });
    }
    expect(decideFate({ ...base, results: [] })).to.deep.equal({ kind: 'ack' });
  });

  it('is retried with an exponential backoff after a transient failure, before any permanent one beside it', () => {
    expect(decideFate({ ...base, results: [{ kind: 'converted' }, permanent, transient] })).to.deep.equal({
      kind: 'retry',
      delaySeconds: 10,
      failure: transient.failure,
      object,
    });
    expect(decideFate({ ...base, attempt: 3, results: [transient] })).to.include({ kind: 'retry', delaySeconds: 40 });
  });

  it('is dead-lettered with RETRIES_EXHAUSTED and the last reason on the last receive, before SQS moves it without one', () => {
    const fate = decideFate({ ...base, attempt: 5, results: [transient] });
    expect(fate).to.deep.equal({
      kind: 'dead-letter',
      failure: { kind: 'permanent', code: 'RETRIES_EXHAUSTED', message: 's3://in/a.csv: still failing after 5 attempts: THROTTLED: slow down' },
    });
  });

  it('is dead-lettered at once after a permanent failure, the reason naming the object', () => {
    expect(decideFate({ ...base, results: [{ kind: 'converted' }, permanent] })).to.deep.equal({
      kind: 'dead-letter',
      failure: { kind: 'permanent', code: 'RAGGED_ROW', message: 's3://in/b.csv: line 3 has 2 fields' },
    });
  });

  it('is released to another consumer at once when shutdown cut its work short, whatever failed', () => {
    expect(decideFate({ ...base, cutShort: true, results: [permanent, transient] })).to.deep.equal({ kind: 'release' });
  });

  it('backs off exponentially with ±20% jitter, never past the maximum', () => {
    expect(backoffSeconds(1, 10, 900, 0)).to.equal(8);
    expect(backoffSeconds(1, 10, 900, 0.999)).to.equal(12);
    expect(backoffSeconds(3, 10, 900, 0.5)).to.equal(40);
    expect(backoffSeconds(20, 10, 900, 0.999)).to.equal(900);
  });
});
