import { expect } from 'chai';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { compareKeys, listObjectPages, OrderedListing } from '../../src/backfill/listing.js';
import { sharedEmulator, uniqueName } from '../support/emulator.js';
import { seededRandom } from '../support/random.js';

/** Characters from every range where UTF-16 and UTF-8 order could disagree. */
const ALPHABET = ['a', 'Z', '0', ' ', '/', '.', '-', '~', 'é', 'ß', '中', '\u{e000}', '\u{fb01}', '\u{ff5e}', '\u{fffd}', '😀', '𝄞', '\u{10ffff}'];

function randomKey(next: () => number): string {
  let key = '';
  const length = 1 + Math.floor(next() * 6);
  for (let i = 0; i < length; i++) key += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return key;
}

describe('backfill listings', function () {
  this.timeout(60_000);

  describe('compareKeys', () => {
    it('orders keys as S3 does, by UTF-8 bytes, across surrogate pairs and U+E000–U+FFFF (2 000 random pairs, seed 1414)', () => {
      const next = seededRandom(1414);
      for (let i = 0; i < 2000; i++) {
        const a = randomKey(next);
        const b = next() < 0.2 ? a + randomKey(next) : randomKey(next);
        const bytes = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).to.equal(bytes);
        expect(Math.sign(compareKeys(b, a))).to.equal(-bytes);
      }
      expect(compareKeys('same', 'same')).to.equal(0);
    });
  });

  describe('against the emulator', () => {
    let clients: AwsClients;
    let bucket: string;
    /** out/k0000 … out/k0249 except every seventh, plus keys outside the prefix and in awkward scripts. */
    const present: string[] = [];

    before(async () => {
      const emulator = await sharedEmulator();
      clients = createAwsClients({ endpoint: emulator.endpoint });
      bucket = uniqueName('bf-listing');
      await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      for (let i = 0; i < 250; i++) if (i % 7 !== 0) present.push(`out/k${String(i).padStart(4, '0')}`);
      const others = ['aaa/first', 'zzz/last', 'out/é', 'out/😀', 'out/\u{fb01}', 'out/中文', 'out/z z'];
      const keys = [...present, ...others];
      for (let i = 0; i < keys.length; i += 25) {
        await Promise.all(keys.slice(i, i + 25).map((key) => clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }))));
      }
      present.push(...others.filter((key) => key.startsWith('out/')));
    });

    after(() => clients?.destroy());

    it('lists every page in the order compareKeys gives', async () => {
      const listed: string[] = [];
      let pages = 0;
      for await (const page of listObjectPages(clients.s3, bucket, 'out/', { pageSize: 40 })) {
        pages += 1;
        listed.push(...page.map((object) => object.key));
      }
      expect(listed).to.deep.equal([...present].sort(compareKeys));
      expect(pages).to.equal(Math.ceil(present.length / 40));
    });

    it('finds keys asked in order with about one request per page, and says which are absent', async () => {
      const listing = new OrderedListing(clients.s3, bucket, 'out/', { pageSize: 40 });
      const asked = Array.from({ length: 250 }, (_, i) => `out/k${String(i).padStart(4, '0')}`);
      for (const key of asked) {
        const answer = await listing.find(key);
        expect(answer, key).not.to.equal('out of order');
        expect((answer as { found: boolean }).found, key).to.equal(present.includes(key));
        if (answer !== 'out of order' && answer.found) expect(answer.object.key).to.equal(key);
      }
      // 214 present keys under out/k at 40 a page: 6 pages; a seventh request at most to learn the end.
      expect(listing.requests).to.be.within(6, 7);
    });

    it('jumps over a gap with one request instead of paging through it', async () => {
      const listing = new OrderedListing(clients.s3, bucket, 'out/', { pageSize: 40 });
      expect(await listing.find('out/k0001')).to.deep.include({ found: true });
      expect(await listing.find('out/k0240')).to.deep.include({ found: true });
      expect(await listing.find('out/k0245')).to.deep.equal({ found: false });
      expect(listing.requests).to.equal(2);
    });

    it('answers a repeated key again (two sources with one stem), and refuses to go back', async () => {
      const listing = new OrderedListing(clients.s3, bucket, 'out/', { pageSize: 40 });
      expect(await listing.find('out/k0100')).to.deep.include({ found: true });
      expect(await listing.find('out/k0100')).to.deep.include({ found: true });
      expect(await listing.find('out/k0099')).to.equal('out of order');
      expect(await listing.find('aaa/first')).to.equal('out of order');
    });

    it('finds keys in every script when asked in S3 order, and knows when the listing ended', async () => {
      const listing = new OrderedListing(clients.s3, bucket, 'out/', { pageSize: 3 });
      const wanted = ['out/z z', 'out/é', 'out/中文', 'out/\u{fb01}', 'out/😀'];
      for (const key of [...wanted].sort(compareKeys)) expect(await listing.find(key), key).to.deep.include({ found: true });
      expect(await listing.find('out/😀z')).to.deep.equal({ found: false });
      expect(await listing.find('out/\u{10ffff}')).to.deep.equal({ found: false });
    });

    it('stops with one line naming a bucket that does not exist', async () => {
      const missing = uniqueName('bf-missing');
      const listing = new OrderedListing(clients.s3, missing, '', {});
      const error = await listing.find('x').then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.name).to.equal('BackfillStopped');
      expect(error?.message).to.equal(`bucket ${missing} does not exist (NoSuchBucket)`);
    });
  });
});
