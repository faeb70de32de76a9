import { expect } from 'chai';
import { RecentConversions } from '../../src/service/recent.js';
import type { TaskResult } from '../../src/service/worker.js';

const converted: TaskResult = { outcome: 'converted', rows: 1, columns: [], bytesIn: 1, bytesOut: 2, conversionMs: 1 };
const failed: TaskResult = { outcome: 'failed', failure: { kind: 'transient', code: 'NETWORK', message: 'reset' } };
const v1 = { bucket: 'in', key: 'a.csv', etag: '"e1"' };

describe('recent conversions (repeats answered in memory)', () => {
  it('remembers a version once its conversion succeeded, and only that exact version', async () => {
    const recent = new RecentConversions();
    let finish!: (result: TaskResult) => void;
    recent.track(v1, new Promise((resolve) => (finish = resolve)));
    expect(recent.wasConverted(v1)).to.equal(false);
    const pending = recent.pending(v1);
    expect(pending).to.not.equal(undefined);
    finish(converted);
    expect(await pending).to.equal(true);
    expect(recent.pending(v1)).to.equal(undefined);
    expect(recent.wasConverted(v1)).to.equal(true);
    expect(recent.wasConverted({ ...v1, etag: '"e2"' })).to.equal(false);
    expect(recent.wasConverted({ ...v1, bucket: 'other' })).to.equal(false);
  });

  it('forgets a failed or rejected conversion, so the next delivery converts again', async () => {
    const recent = new RecentConversions();
    recent.track(v1, Promise.resolve(failed));
    expect(await recent.pending(v1)).to.equal(false);
    const v2 = { ...v1, key: 'b.csv' };
    recent.track(v2, Promise.reject(new Error('pool closed')));
    expect(await recent.pending(v2)).to.equal(false);
    expect(recent.wasConverted(v1)).to.equal(false);
    expect(recent.wasConverted(v2)).to.equal(false);
  });

  it('keeps at most `capacity` versions, dropping the oldest, and forgets them after the TTL', async () => {
    const recent = new RecentConversions(2, 50);
    const versions = ['a', 'b', 'c'].map((key) => ({ ...v1, key }));
    for (const version of versions) {
      recent.track(version, Promise.resolve(converted));
      await recent.pending(version);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(versions.map((version) => recent.wasConverted(version))).to.deep.equal([false, true, true]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(recent.wasConverted(versions[2]!)).to.equal(false);
  });
});
