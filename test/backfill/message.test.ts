import { expect } from 'chai';
import { BACKFILL_CONFIGURATION_ID, encodeS3Key, notificationBody } from '../../src/backfill/message.js';
import { decodeS3Key } from '../../src/events/keys.js';
import { isObjectCreated, parseNotification } from '../../src/events/parse.js';

const HOSTILE_KEYS = [
  'incoming/2024/sales.csv',
  'a b/c d.csv',
  'plus+sign.csv',
  "it's (really) *the* file!.csv",
  'percent%20not-a-space.csv',
  'émojis/🚀 launch.csv.gz',
  'query?and=amp&hash#.csv',
  'tab\tand\nnewline.csv',
  '~tilde/.dot/__under__.csv',
];

describe('backfill notifications', () => {
  for (const key of HOSTILE_KEYS) {
    it(`encodes ${JSON.stringify(key)} as S3 does, and the service decodes it back exactly`, () => {
      const encoded = encodeS3Key(key);
      expect(encoded).not.to.match(/[ !'()*]/);
      expect(decodeS3Key(encoded)).to.equal(key);
    });
  }

  it('writes spaces as + and keeps / literal, as AWS does', () => {
    expect(encodeS3Key('dir/a b+c.csv')).to.equal('dir/a+b%2Bc.csv');
  });

  it('is an ObjectCreated S3 record that the service parses into the same object, marked as backfill', () => {
    const object = { key: 'in/é b.csv', etag: '"9b2cf535f27731c974343645a3985328"', lastModified: new Date('2026-01-01T00:00:00Z'), size: 1234 };
    const body = notificationBody('landing', object, 'eu-west-1', new Date('2026-02-02T02:02:02Z'));
    const notification = parseNotification(body);
    expect(notification.kind).to.equal('objects');
    if (notification.kind !== 'objects') return;
    expect(notification.objects).to.have.length(1);
    const [event] = notification.objects;
    expect(event).to.deep.include({ bucket: 'landing', key: 'in/é b.csv', eventName: 'ObjectCreated:Put', eTag: '9b2cf535f27731c974343645a3985328', size: 1234 });
    expect(isObjectCreated(event!)).to.equal(true);
    expect(event!.eventTime?.toISOString()).to.equal('2026-02-02T02:02:02.000Z');
    const record = (JSON.parse(body) as { Records: { eventSource: string; awsRegion: string; s3: { configurationId: string; bucket: { arn: string } } }[] }).Records[0]!;
    expect(record).to.deep.include({ eventSource: 'aws:s3', awsRegion: 'eu-west-1' });
    expect(record.s3.configurationId).to.equal(BACKFILL_CONFIGURATION_ID);
    expect(record.s3.bucket.arn).to.equal('arn:aws:s3:::landing');
  });

  it('names the bucket in its own partition', () => {
    const object = { key: 'a.csv', etag: '"e"', lastModified: new Date(), size: 1 };
    const arn = (region: string) => (JSON.parse(notificationBody('b-1', object, region)) as { Records: { s3: { bucket: { arn: string } } }[] }).Records[0]!.s3.bucket.arn;
    expect(arn('cn-north-1')).to.equal('arn:aws-cn:s3:::b-1');
    expect(arn('us-gov-west-1')).to.equal('arn:aws-us-gov:s3:::b-1');
  });
});
