import { expect } from 'chai';
import { PermanentError } from '../../src/errors.js';
import { isObjectCreated, parseNotification, type Notification, type ObjectEvent } from '../../src/events/parse.js';

/** One record as S3 writes it, key already URL-encoded the way S3 sends it. */
function record(encodedKey: string, eventName = 'ObjectCreated:Put', bucket = 'landing') {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: '2026-11-02T10:20:30.123Z',
    eventName,
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'csv',
      bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
      object: { key: encodedKey, size: 1024, eTag: 'abc123', versionId: 'v1', sequencer: '0065A1B2C3D4E5F601' },
    },
  };
}

const s3Event = (...records: unknown[]) => JSON.stringify({ Records: records });
const snsWrapped = (message: unknown) =>
  JSON.stringify({
    Type: 'Notification',
    MessageId: '1',
    TopicArn: 'arn:aws:sns:us-east-1:123456789012:landing',
    Subject: 'Amazon S3 Notification',
    Message: typeof message === 'string' ? message : JSON.stringify(message),
  });
const testEvent = { Service: 'Amazon S3', Event: 's3:TestEvent', Time: '2026-11-02T10:20:30.123Z', Bucket: 'landing' };

function objectsOf(notification: Notification): ObjectEvent[] {
  if (notification.kind !== 'objects') throw new Error(`expected objects, got ${notification.kind}`);
  return notification.objects;
}

function keyOf(encodedKey: string): string {
  return objectsOf(parseNotification(s3Event(record(encodedKey))))[0]!.key;
}

function malformedReason(body: string): string {
  try {
    parseNotification(body);
  } catch (error) {
    expect(error).to.be.instanceOf(PermanentError);
    expect((error as PermanentError).code).to.equal('MALFORMED_MESSAGE');
    return (error as PermanentError).message;
  }
  throw new Error('expected a MALFORMED_MESSAGE error');
}

describe('parseNotification', () => {
  describe('an S3 event sent straight to SQS', () => {
    it('gives every field of the record', () => {
      expect(parseNotification(s3Event(record('data/sales.csv')))).to.deep.equal({
        kind: 'objects',
        objects: [
          {
            bucket: 'landing',
            key: 'data/sales.csv',
            eventName: 'ObjectCreated:Put',
            size: 1024,
            eTag: 'abc123',
            versionId: 'v1',
            sequencer: '0065A1B2C3D4E5F601',
            eventTime: new Date('2026-11-02T10:20:30.123Z'),
          },
        ],
      });
    });

    it('gives every record of a body that holds several, in order', () => {
      const objects = objectsOf(parseNotification(s3Event(record('a.csv'), record('b.csv', 'ObjectCreated:Copy', 'other'))));
      expect(objects.map((o) => [o.bucket, o.key, o.eventName])).to.deep.equal([
        ['landing', 'a.csv', 'ObjectCreated:Put'],
        ['other', 'b.csv', 'ObjectCreated:Copy'],
      ]);
    });

    it('leaves out optional fields it does not have instead of failing', () => {
      const bare = { eventName: 'ObjectCreated:Post', s3: { bucket: { name: 'b' }, object: { key: 'k.csv', size: 'big' } } };
      expect(objectsOf(parseNotification(s3Event(bare)))).to.deep.equal([
        { bucket: 'b', key: 'k.csv', eventName: 'ObjectCreated:Post' },
      ]);
    });

    it('reports records of other event types so the caller can skip them', () => {
      const objects = objectsOf(
        parseNotification(s3Event(record('a.csv'), record('b.csv', 'ObjectRemoved:Delete'), record('c.csv', 'ObjectTagging:Put'))),
      );
      expect(objects.map((o) => [o.key, isObjectCreated(o)])).to.deep.equal([
        ['a.csv', true],
        ['b.csv', false],
        ['c.csv', false],
      ]);
    });
  });

  describe('key decoding', () => {
    it('reads + as a space', () => expect(keyOf('a+b.csv')).to.equal('a b.csv'));
    it('reads %2B as a plus sign', () => expect(keyOf('c%2B%2B+notes.csv')).to.equal('c++ notes.csv'));
    it('reads %20 as a space too (LocalStack writes it)', () => expect(keyOf('a%20b.csv')).to.equal('a b.csv'));
    it('decodes UTF-8 percent-encoding', () => expect(keyOf('caf%C3%A9/%E6%97%A5%E6%9C%AC.csv')).to.equal('café/日本.csv'));
    it('accepts slashes literal (AWS) or as %2F (moto)', () => {
      expect(keyOf('2026/11/02/x.csv')).to.equal('2026/11/02/x.csv');
      expect(keyOf('2026%2F11%2F02%2Fx.csv')).to.equal('2026/11/02/x.csv');
    });
    it('decodes reserved characters', () => expect(keyOf('q%3Fa%3D1%26b%3A2%25.csv')).to.equal('q?a=1&b:2%.csv'));

    for (const bad of ['100%.csv', 'a%2.csv', 'a%zz.csv', '%C3%28.csv']) {
      it(`rejects the malformed percent-encoding ${bad}`, () => {
        expect(malformedReason(s3Event(record(bad)))).to.include(bad).and.include('percent-encoding');
      });
    }
  });

  describe('an S3 event wrapped by SNS', () => {
    it('unwraps the Message and decodes the key', () => {
      const objects = objectsOf(parseNotification(snsWrapped({ Records: [record('in/a+b%2Bc.csv')] })));
      expect(objects.map((o) => [o.bucket, o.key])).to.deep.equal([['landing', 'in/a b+c.csv']]);
    });

    it('recognises a wrapped TestEvent', () => {
      expect(parseNotification(snsWrapped(testEvent))).to.deep.equal({ kind: 'test-event', bucket: 'landing' });
    });

    it('rejects a Message that is not JSON', () => {
      expect(malformedReason(snsWrapped('hello'))).to.include('SNS notification Message is not JSON');
    });

    it('rejects a notification without a Message', () => {
      expect(malformedReason(JSON.stringify({ Type: 'Notification', MessageId: '1' }))).to.include('no Message');
    });

    it('rejects an SNS envelope inside another', () => {
      expect(malformedReason(snsWrapped(JSON.parse(snsWrapped(testEvent))))).to.include('nested');
    });

    it('names the SNS type of a subscription confirmation it cannot use', () => {
      const body = JSON.stringify({ Type: 'SubscriptionConfirmation', Message: 'You have chosen to subscribe…' });
      expect(malformedReason(body)).to.include('SubscriptionConfirmation');
    });
  });

  describe('an EventBridge Object Created event', () => {
    const eventBridge = (key: string, detailType = 'Object Created') =>
      JSON.stringify({
        version: '0',
        id: 'c9888434-815d-c6f4-9fc2-4dd7bdeccaaf',
        'detail-type': detailType,
        source: 'aws.s3',
        account: '123456789012',
        time: '2026-11-02T10:20:30Z',
        region: 'us-east-1',
        resources: ['arn:aws:s3:::landing'],
        detail: {
          version: '0',
          bucket: { name: 'landing' },
          object: { key, size: 2048, etag: 'def456', 'version-id': 'v2', sequencer: '0065A1B2C3D4E5F602' },
          'request-id': 'R',
          requester: '123456789012',
          reason: 'PutObject',
        },
      });

    it('gives the object with its metadata', () => {
      expect(parseNotification(eventBridge('in/sales.csv'))).to.deep.equal({
        kind: 'objects',
        objects: [
          {
            bucket: 'landing',
            key: 'in/sales.csv',
            eventName: 'ObjectCreated:PutObject',
            size: 2048,
            eTag: 'def456',
            versionId: 'v2',
            sequencer: '0065A1B2C3D4E5F602',
            eventTime: new Date('2026-11-02T10:20:30Z'),
          },
        ],
      });
    });

    it('takes the key as it is, because EventBridge does not URL-encode it', () => {
      expect(objectsOf(parseNotification(eventBridge('a+b %2B é.csv')))[0]!.key).to.equal('a+b %2B é.csv');
    });

    it('reports other S3 event types as not ObjectCreated', () => {
      const [object] = objectsOf(parseNotification(eventBridge('a.csv', 'Object Deleted')));
      expect(object!.eventName).to.equal('Object Deleted');
      expect(isObjectCreated(object!)).to.equal(false);
    });

    it('rejects an event without detail.object.key', () => {
      const body = JSON.stringify({ 'detail-type': 'Object Created', detail: { bucket: { name: 'b' }, object: {} } });
      expect(malformedReason(body)).to.include('detail.object.key is missing');
    });
  });

  describe('the s3:TestEvent', () => {
    it('is its own kind, with the bucket it names', () => {
      expect(parseNotification(JSON.stringify(testEvent))).to.deep.equal({ kind: 'test-event', bucket: 'landing' });
    });

    it('needs no bucket', () => {
      expect(parseNotification(JSON.stringify({ Event: 's3:TestEvent' }))).to.deep.equal({ kind: 'test-event' });
    });
  });

  describe('a body it cannot use is MALFORMED_MESSAGE with a reason', () => {
    it('not JSON', () => expect(malformedReason('key=a.csv')).to.include('message body is not JSON').and.include('key=a.csv'));
    it('empty', () => expect(malformedReason('')).to.include('not JSON'));
    it('JSON but not an object', () => {
      expect(malformedReason('[1,2]')).to.include('not a JSON object');
      expect(malformedReason('null')).to.include('not a JSON object');
      expect(malformedReason('"a.csv"')).to.include('not a JSON object');
    });
    it('JSON of another shape, naming its fields', () => {
      expect(malformedReason(JSON.stringify({ bucket: 'b', key: 'a.csv' })))
        .to.include('not an S3 event notification')
        .and.include('bucket, key');
    });
    it('Records that is not an array, or empty', () => {
      expect(malformedReason(JSON.stringify({ Records: {} }))).to.include('Records is not an array');
      expect(malformedReason(s3Event())).to.include('Records is empty');
    });
    it('a record without a key, naming where', () => {
      const noKey = record('x');
      delete (noKey.s3.object as { key?: string }).key;
      expect(malformedReason(s3Event(record('a.csv'), noKey))).to.include('Records[1].s3.object.key is missing');
    });
    it('a record with an empty key or a key that is not a string', () => {
      expect(malformedReason(s3Event(record('')))).to.include('Records[0].s3.object.key is not a non-empty string');
      const numeric = { ...record('x'), s3: { bucket: { name: 'b' }, object: { key: 42 } } };
      expect(malformedReason(s3Event(numeric))).to.include('Records[0].s3.object.key');
    });
    it('a record without a bucket or an event name', () => {
      const noBucket = { eventName: 'ObjectCreated:Put', s3: { object: { key: 'a.csv' } } };
      expect(malformedReason(s3Event(noBucket))).to.include('Records[0].s3.bucket is missing');
      const noName = { s3: { bucket: { name: 'b' }, object: { key: 'a.csv' } } };
      expect(malformedReason(s3Event(noName))).to.include('Records[0].eventName is missing');
    });
  });
});
