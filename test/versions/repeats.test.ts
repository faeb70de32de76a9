import { expect } from 'chai';
import { RecentNotifications, type RepeatOutcome } from '../../src/versions/repeats.js';

const first = { bucket: 'in', key: 'a.csv', etag: '"e1"', eventTime: new Date('2026-11-30T10:00:00.000Z') };

describe('recent notifications (repeats answered in memory)', () => {
  it('remembers a notification once its conversion succeeded, and only that exact notification', async () => {
    const recent = new RecentNotifications();
    let finish!: (outcome: RepeatOutcome) => void;
    recent.track(first, new Promise((resolve) => (finish = resolve)));
    expect(recent.wasConverted(first)).to.equal(false);
    const pending = recent.pending(first);
    expect(pending).to.not.equal(undefined);
    finish('converted');
    expect(await pending).to.equal('converted');
    expect(recent.pending(first)).to.equal(undefined);
    // The same notification again (a redelivery, quoted or bare ETag): a repeat.
    expect(recent.wasConverted({ ...first, etag: 'e1' })).to.equal(true);
    expect(recent.wasConverted({ ...first, etag: '"e2"' })).to.equal(false);
    expect(recent.wasConverted({ ...first, bucket: 'other' })).to.equal(false);
  });

  it('X, then Y, then X again: the third upload is a new notification, not a repeat of the first', async () => {
    const recent = new RecentNotifications();
    const x1 = { ...first, sequencer: '0055AED6DCD90281E5' };
    const y = { ...first, etag: '"e2"', sequencer: '0055AED6DCD90281E6' };
    const x2 = { ...first, sequencer: '0055AED6DCD90281E7' };
    for (const upload of [x1, y]) {
      recent.track(upload, Promise.resolve('converted'));
      await recent.pending(upload);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(recent.wasConverted(x1)).to.equal(true);
    expect(recent.wasConverted(x2), 'same ETag, later sequencer').to.equal(false);
    // Without sequencers (moto), the event time tells the uploads apart.
    const { sequencer: _s, ...withoutSequencer } = x1;
    recent.track(withoutSequencer, Promise.resolve('converted'));
    await recent.pending(withoutSequencer);
    await new Promise((resolve) => setImmediate(resolve));
    expect(recent.wasConverted({ ...withoutSequencer, eventTime: new Date('2026-11-30T10:05:00.000Z') })).to.equal(false);
    expect(recent.wasConverted(withoutSequencer)).to.equal(true);
  });

  it('forgets a failed or rejected conversion, so the next delivery converts again', async () => {
    const recent = new RecentNotifications();
    recent.track(first, Promise.resolve('not-converted'));
    expect(await recent.pending(first)).to.equal('not-converted');
    const other = { ...first, key: 'b.csv' };
    recent.track(other, Promise.reject(new Error('pool closed')));
    expect(await recent.pending(other)).to.equal('not-converted');
    expect(recent.wasConverted(first)).to.equal(false);
    expect(recent.wasConverted(other)).to.equal(false);
  });

  it('keeps at most `capacity` notifications, dropping the oldest, and forgets them after the TTL', async () => {
    const recent = new RecentNotifications(2, 50);
    const notifications = ['a', 'b', 'c'].map((key) => ({ ...first, key }));
    for (const notification of notifications) {
      recent.track(notification, Promise.resolve('converted'));
      await recent.pending(notification);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(notifications.map((n) => recent.wasConverted(n))).to.deep.equal([false, true, true]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(recent.wasConverted(notifications[2]!)).to.equal(false);
  });
});
