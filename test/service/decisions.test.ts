import { expect } from 'chai';
import { classifyFailure, ObjectGoneError, PermanentError } from '../../src/errors.js';
import { isHealthy } from '../../src/service/health.js';

describe('failure classification, decided once', () => {
  it('our permanent errors dead-letter; a missing object is gone; the rest is retried', () => {
    expect(classifyFailure(new PermanentError('RAGGED_ROW', 'line 3'))).to.deep.equal({ kind: 'permanent', code: 'RAGGED_ROW', message: 'line 3' });
    expect(classifyFailure(new ObjectGoneError('x')).kind).to.equal('gone');
    expect(classifyFailure(Object.assign(new Error('no key'), { name: 'NoSuchKey' })).kind).to.equal('gone');
    const slowDown = Object.assign(new Error('slow'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    expect(classifyFailure(slowDown)).to.include({ kind: 'transient', code: 'THROTTLED' });
    expect(classifyFailure(Object.assign(new Error('boom'), { $metadata: { httpStatusCode: 500 } }))).to.include({ kind: 'transient', code: 'SERVER_ERROR' });
    expect(classifyFailure(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).to.include({ kind: 'transient', code: 'NETWORK' });
    // An unknown error (even a bug) is retried; the redrive policy is the backstop, nothing is dropped on a guess.
    expect(classifyFailure(new TypeError('bug')).kind).to.equal('transient');
  });
});

describe('health', () => {
  const now = 1_000_000;
  it('is healthy while every poller either polled recently or is busy with a batch', () => {
    expect(isHealthy([{ lastReceiveAt: now - 1000, busy: false }], 60_000, now)).to.equal(true);
    expect(isHealthy([{ lastReceiveAt: now - 600_000, busy: true }], 60_000, now)).to.equal(true);
  });
  it('is unhealthy when an idle poller has not received for too long, or there are no pollers', () => {
    expect(isHealthy([{ lastReceiveAt: now - 61_000, busy: false }], 60_000, now)).to.equal(false);
    expect(isHealthy([], 60_000, now)).to.equal(false);
  });
});
