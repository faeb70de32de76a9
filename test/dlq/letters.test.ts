import { expect } from 'chai';
import type { Message } from '@aws-sdk/client-sqs';
import {
  ageOf,
  attributesToRedrive,
  matchesFilter,
  MAX_RECEIVES,
  readDeadLetter,
  subjectOf,
} from '../../src/dlq/letters.js';

function s3Body(...objects: [bucket: string, key: string][]): string {
  return JSON.stringify({
    Records: objects.map(([bucket, key]) => ({
      eventName: 'ObjectCreated:Put',
      s3: { bucket: { name: bucket }, object: { key: encodeURIComponent(key).replace(/%20/g, '+'), size: 10 } },
    })),
  });
}

const ours = (code: string, extra: Message['MessageAttributes'] = {}): Message['MessageAttributes'] => ({
  'error-code': { DataType: 'String', StringValue: code },
  'error-message': { DataType: 'String', StringValue: 's3://in/a.csv: line 3: row has 4 fields, the header has 3' },
  'source-message-id': { DataType: 'String', StringValue: 'source-1' },
  'failed-at': { DataType: 'String', StringValue: '2026-11-20T10:00:00.000Z' },
  attempts: { DataType: 'Number', StringValue: '2' },
  ...extra,
});

describe('reading a dead letter', () => {
  it('takes the reason from our attributes and the object from the body', () => {
    const letter = readDeadLetter({
      MessageId: 'm1',
      Body: s3Body(['in', 'daily/a b.csv']),
      MessageAttributes: ours('RAGGED_ROW'),
      Attributes: { SentTimestamp: String(Date.parse('2026-11-20T10:00:01Z')) },
    });
    expect(letter).to.deep.equal({
      messageId: 'm1',
      code: 'RAGGED_ROW',
      reason: 's3://in/a.csv: line 3: row has 4 fields, the header has 3',
      failedAt: new Date('2026-11-20T10:00:00.000Z'),
      attempts: 2,
      sourceMessageId: 'source-1',
      sentAt: new Date('2026-11-20T10:00:01Z'),
      body: { kind: 'objects', objects: [{ bucket: 'in', key: 'daily/a b.csv' }] },
    });
    expect(subjectOf(letter)).to.equal('s3://in/daily/a b.csv');
    expect(ageOf(letter, new Date('2026-11-20T10:01:00.000Z'))).to.equal(60_000);
  });

  it(`labels a message without our attributes ${MAX_RECEIVES}: SQS moved it after too many receives`, () => {
    const letter = readDeadLetter({ MessageId: 'm2', Body: s3Body(['in', 'x.csv']), Attributes: { SentTimestamp: '1000' } });
    expect(letter.code).to.equal(MAX_RECEIVES);
    expect(letter.reason).to.match(/redrive policy after maxReceiveCount/);
    expect(letter.failedAt).to.equal(undefined);
    expect(letter.attempts).to.equal(undefined);
    // With no failure time, the age counts from the original send.
    expect(ageOf(letter, new Date(61_000))).to.equal(60_000);
  });

  it('shows a body that is not a notification as unreadable, with the parser’s reason', () => {
    const letter = readDeadLetter({ MessageId: 'm3', Body: 'hello', MessageAttributes: ours('MALFORMED_MESSAGE') });
    expect(letter.body.kind).to.equal('poison');
    expect(subjectOf(letter)).to.match(/^unreadable body: message body is not JSON/);
  });

  it('names a test event and counts extra objects', () => {
    expect(subjectOf(readDeadLetter({ MessageId: 't', Body: JSON.stringify({ Event: 's3:TestEvent', Bucket: 'in' }) }))).to.equal('s3:TestEvent');
    expect(subjectOf(readDeadLetter({ MessageId: 'n', Body: s3Body(['in', 'a.csv'], ['in', 'b.csv'], ['in', 'c.csv']) }))).to.equal(
      's3://in/a.csv (+2 more)',
    );
  });
});

describe('filtering dead letters', () => {
  const ragged = readDeadLetter({ MessageId: 'a', Body: s3Body(['in', 'daily/a.csv']), MessageAttributes: ours('RAGGED_ROW') });
  const redriven = readDeadLetter({ MessageId: 'b', Body: s3Body(['other', 'weekly/b.csv']) });
  const poison = readDeadLetter({ MessageId: 'c', Body: '{', MessageAttributes: ours('MALFORMED_MESSAGE') });

  it('passes everything without conditions', () => {
    for (const letter of [ragged, redriven, poison]) expect(matchesFilter(letter, {})).to.equal(true);
  });

  it('matches any of the error codes, MAX_RECEIVES included', () => {
    const filter = { errorCodes: ['RAGGED_ROW', MAX_RECEIVES] };
    expect([ragged, redriven, poison].map((letter) => matchesFilter(letter, filter))).to.deep.equal([true, true, false]);
  });

  it('matches a key prefix, optionally with its bucket; an unreadable body never matches one', () => {
    expect([ragged, redriven, poison].map((letter) => matchesFilter(letter, { keyPrefix: 'daily/' }))).to.deep.equal([true, false, false]);
    expect(matchesFilter(redriven, { keyPrefix: 's3://other/weekly/' })).to.equal(true);
    expect(matchesFilter(redriven, { keyPrefix: 's3://in/weekly/' })).to.equal(false);
    expect(matchesFilter(redriven, { keyPrefix: 's3://other' })).to.equal(true);
  });

  it('needs both conditions when both are given', () => {
    expect(matchesFilter(ragged, { errorCodes: ['RAGGED_ROW'], keyPrefix: 'weekly/' })).to.equal(false);
    expect(matchesFilter(ragged, { errorCodes: ['RAGGED_ROW'], keyPrefix: 'daily/' })).to.equal(true);
  });
});

describe('attributes sent back by redrive', () => {
  it('are the original’s own: ours are removed', () => {
    const attributes = attributesToRedrive({
      MessageAttributes: ours('RAGGED_ROW', {
        'trace-id': { DataType: 'String', StringValue: 'abc', StringListValues: [], BinaryListValues: [] },
        blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2]) },
      }),
    });
    expect(attributes).to.deep.equal({
      'trace-id': { DataType: 'String', StringValue: 'abc' },
      blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2]) },
    });
  });

  it('are none when the message had only ours', () => {
    expect(attributesToRedrive({ MessageAttributes: ours('RAGGED_ROW') })).to.equal(undefined);
    expect(attributesToRedrive({})).to.equal(undefined);
  });
});
