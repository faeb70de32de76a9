/**
 * Bad input: over a thousand malformed and hostile objects (and a few poisoned notifications) go
 * through a real `serve` process. Each one ends converted or dead-lettered with its reason, none
 * is lost or explained only by the queue's redrive policy, the process never crashes, and its
 * memory at the end stays within a bound of where it started.
 */
import { expect } from 'chai';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { createAwsClients, type AwsClients } from '../../src/aws.js';
import { sharedEmulator } from '../support/emulator.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { generateHostileCorpus, type HostileObject } from '../support/hostile-corpus.js';
import { seedFromEnv } from '../support/random.js';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import {
  asDeadLetter,
  createPipeline,
  drainQueue,
  inParallel,
  listKeys,
  outputKeysFor,
  putObject,
  queueDepth,
  readOutputs,
  rssBytes,
  saveLogs,
  serviceEnv,
  sleep,
  waitFor,
  type DeadLetter,
  type Pipeline,
} from './harness.js';

const MAX_OBJECT_BYTES = 5 * 1024 * 1024;
const MiB = 1024 * 1024;
/**
 * RSS may grow this much from the start to the end of the run: a third of the 2 GiB task the
 * service is deployed with (task-definition.json), with 16 files in flight. A leak of a few hundred
 * KiB per object would pass it over 1 000 objects; heavy single files must fit under it too.
 */
const RSS_GROWTH_BOUND = 640 * MiB;

/** Notification bodies that are wrong in themselves: each must be dead-lettered as MALFORMED_MESSAGE. */
function poisonedNotifications(bucket: string): string[] {
  const record = (key: string) => JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key } } }] });
  return [
    'not json at all',
    '{"Records": []}',
    '{"Records": "nope"}',
    '{"Records": [{"s3": {}}]}',
    '[1, 2, 3]',
    'null',
    '"a string"',
    '{"Type": "Notification", "Message": "{\\"Type\\": \\"Notification\\", \\"Message\\": \\"{}\\"}"}',
    '{"detail-type": "Object Created", "detail": {"bucket": {}}}',
    record('bad%E0%A4%Apercent.csv'),
    record(''),
    '['.repeat(50_000) + ']'.repeat(50_000),
    // Cut off in the middle of a 200 000-character key.
    JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key: `${'x'.repeat(200_000)}.csv` } } }] }).slice(0, 150_000),
  ];
}

describe('reliability: a hostile corpus through the service', function () {
  this.timeout(600_000);
  // Fixed unless CORPUS_SEED says otherwise (a number, or `random`), so every CI run fuzzes alike.
  const seed = seedFromEnv('CORPUS_SEED', 69_713);
  const only = process.env.CORPUS_ONLY?.split(',');
  let endpoint: string;
  let clients: AwsClients;
  let proxy: FaultProxy;
  let pipeline: Pipeline;
  let service: ServiceProcess;
  let corpus: HostileObject[];
  const etags = new Map<string, string>();
  const rss: { at: number; handled: number; bytes: number }[] = [];
  let deadLetters: DeadLetter[];
  let outputs: Map<string, { size: number; etag: string }>;
  let totals: Record<string, number>;
  let poisoned: string[];
  let missingSources: string[];
  let seconds = 0;

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(`      replay this corpus with CORPUS_SEED=${seed}`);
  });

  before(async function () {
    endpoint = (await sharedEmulator()).endpoint;
    clients = createAwsClients({ endpoint });
    // No faults here: the proxy only makes the emulator refuse keys over 1 024 bytes, as S3 does.
    proxy = await startFaultProxy(endpoint, { enforceS3KeyLimit: true });
    pipeline = await createPipeline(clients, 'hostile', { maxReceiveCount: 3 });
    const started = Date.now();
    corpus = generateHostileCorpus({ seed, maxObjectBytes: MAX_OBJECT_BYTES });
    // CORPUS_ONLY=gzip-bomb,odd-header replays just those categories (for debugging a failure).
    if (only) corpus = corpus.filter((object) => only.some((category) => object.category.startsWith(category)));
    console.log(`      corpus seed ${seed}: ${corpus.length} objects, ${(corpus.reduce((n, o) => n + o.body.length, 0) / MiB).toFixed(1)} MiB, generated in ${Date.now() - started} ms`);

    // Everything is queued before the service starts: moto's SQS can drop a message sent while
    // another is being deleted (its delete rebuilds the list without the lock), which would look
    // like a lost file here.
    await inParallel(corpus, 16, async (object) => {
      etags.set(object.key, await putObject(clients, pipeline.inputBucket, object.key, object.body));
    });
    poisoned = poisonedNotifications(pipeline.inputBucket);
    // Notifications of objects that do not exist (deleted before we got to them): acknowledged as gone.
    missingSources = ['gone/1.csv', 'gone/2.csv.gz', 'gone/deep/3.csv'];
    const gone = missingSources.map((key) =>
      JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: pipeline.inputBucket }, object: { key, eTag: 'abc' } } }] }),
    );
    const bodies = [...poisoned, ...gone];
    // One by one: a batch may carry 256 KiB in all, and one body alone is near that.
    for (const body of bodies) await clients.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.queueUrl, MessageBody: body }));
    const queued = Date.now();

    service = await startServiceProcess(
      serviceEnv(pipeline, proxy.endpoint, {
        MAX_OBJECT_BYTES: String(MAX_OBJECT_BYTES),
        CONCURRENCY: '16',
        VISIBILITY_TIMEOUT: '30',
        HEARTBEAT_INTERVAL: '5',
      }),
    );
    const pid = service.child.pid!;
    const handled = async () => (await service.health()).body.totals?.MessagesReceived ?? 0;
    rss.push({ at: Date.now(), handled: 0, bytes: await rssBytes(pid) });
    const sampler = setInterval(() => {
      void Promise.all([rssBytes(pid), handled()]).then(
        ([bytes, count]) => rss.push({ at: Date.now(), handled: count, bytes }),
        () => undefined,
      );
    }, 1_000);

    try {
      const expected = corpus.length + bodies.length;
      // Done when every message was received and the queue stays empty (retries included).
      await waitFor(
        'the queue to empty',
        async () => {
          const depth = await queueDepth(clients, pipeline.queueUrl);
          if (depth.visible + depth.inFlight + depth.delayed > 0 || (await handled()) < expected) return false;
          await sleep(3_000);
          const again = await queueDepth(clients, pipeline.queueUrl);
          return again.visible + again.inFlight + again.delayed === 0;
        },
        420_000,
        1_000,
      );
    } finally {
      clearInterval(sampler);
    }
    seconds = (Date.now() - queued) / 1000;
    rss.push({ at: Date.now(), handled: await handled(), bytes: await rssBytes(pid) });
    totals = (await service.health()).body.totals ?? {};
    deadLetters = (await drainQueue(clients, pipeline.dlqUrl, 1_500)).map(asDeadLetter);
    outputs = await listKeys(clients, pipeline.outputBucket);
  });

  after(async () => {
    if (service) console.log(`      service logs: ${await saveLogs(service.logs, `hostile-${seed}`)}`);
    await service?.stop('SIGKILL');
    await proxy?.close();
    clients?.destroy();
  });

  it('never crashes: the process is up, healthy, and logged no unhandled failure', async () => {
    expect(service.child.exitCode).to.equal(null);
    expect((await service.health()).status).to.equal(200);
    const fatal = service.logs.filter((line) => /unhandled|message handler failed|uncaught/i.test(String(line.msg)));
    expect(fatal.map((line) => JSON.stringify(line).slice(0, 300))).to.deep.equal([]);
  });

  it('ends every object converted or dead-lettered with a reason, as its kind demands', async () => {
    const byKey = new Map<string, DeadLetter[]>();
    for (const letter of deadLetters) for (const key of letter.keys ?? []) byKey.set(key, [...(byKey.get(key) ?? []), letter]);
    const problems: string[] = [];
    const figures = new Map<string, Map<string, number>>();
    const note = (category: string, outcome: string) => {
      const row = figures.get(category) ?? new Map<string, number>();
      row.set(outcome, (row.get(outcome) ?? 0) + 1);
      figures.set(category, row);
    };
    const converted: HostileObject[] = [];
    let repeatedLetters = 0;

    for (const object of corpus) {
      const { parquet, avro } = outputKeysFor(object.key);
      const has = [outputs.has(parquet), outputs.has(avro)];
      const letters = byKey.get(object.key) ?? [];
      const name = `${object.category} ${JSON.stringify(object.key).slice(0, 60)}`;
      if (has[0] !== has[1]) problems.push(`${name}: only ${has[0] ? 'parquet' : 'avro'} was published`);
      if (has[0] && has[1]) {
        converted.push(object);
        note(object.category, 'converted');
        if (letters.length > 0) problems.push(`${name}: converted and also dead-lettered (${letters[0]!.code})`);
        if (object.expect.outcome === 'dead-lettered') problems.push(`${name}: converted, expected ${object.expect.codes.join('|') || 'a dead letter'}`);
        continue;
      }
      if (letters.length === 0) {
        problems.push(`${name}: LOST (no outputs, no dead letter)`);
        note(object.category, 'lost');
        continue;
      }
      const letter = letters[0]!;
      note(object.category, letter.code ?? 'NO-REASON');
      // SQS delivers at least once, so a dead letter may be sent twice; it must say the same thing.
      if (letters.length > 1) repeatedLetters += letters.length - 1;
      if (letters.some((other) => other.code !== letter.code)) problems.push(`${name}: dead-lettered with different codes ${letters.map((l) => l.code).join(', ')}`);
      if (!letter.code || !letter.reason) {
        problems.push(`${name}: dead-lettered without a reason (the queue's redrive policy moved it after ${letter.attributes.attempts ?? '?'} receives)`);
      } else if (object.expect.outcome === 'converted') {
        problems.push(`${name}: dead-lettered ${letter.code} (${letter.reason.slice(0, 200)}), expected converted`);
      } else if (object.expect.codes.length > 0 && !object.expect.codes.includes(letter.code as never)) {
        problems.push(`${name}: dead-lettered ${letter.code} (${letter.reason.slice(0, 200)}), expected ${object.expect.codes.join('|')}`);
      }
    }

    const table = [...figures.entries()].map(([category, row]) => `${category}: ${[...row.entries()].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log(`      outcomes by category:\n        ${table.join('\n        ')}`);
    console.log(
      `      ${seconds.toFixed(0)} s from the first message to an empty queue; ${repeatedLetters} repeated dead letter(s); ` +
        `service totals: ${JSON.stringify(totals)}; proxy refused ${proxy.stats().keyTooLong} over-long keys`,
    );
    expect(problems.length, `${problems.length} objects ended wrongly:\n${problems.slice(0, 30).join('\n')}`).to.equal(0);
    if (!only) expect(corpus.length).to.be.at.least(1000);

    // Converted means readable whole by independent readers, with the rows the CSV had.
    const keys = converted.flatMap((object) => Object.values(outputKeysFor(object.key)));
    const checks = await readOutputs(endpoint, pipeline.outputBucket, keys);
    const rowsWanted = new Map(converted.flatMap((o) => Object.values(outputKeysFor(o.key)).map((k) => [k, o] as const)));
    const unreadable = checks.filter((check) => {
      const object = rowsWanted.get(check.key)!;
      const wanted = object.expect.outcome === 'converted' ? object.expect.rows : undefined;
      return check.error !== undefined || (wanted !== undefined && check.rows !== wanted) || check.sourceEtag !== etags.get(object.key);
    });
    expect(unreadable.slice(0, 10), `${unreadable.length} outputs unreadable or wrong`).to.deep.equal([]);
  });

  it('dead-letters every poisoned notification as MALFORMED_MESSAGE and acknowledges notifications of missing objects', () => {
    const malformed = deadLetters.filter((letter) => poisoned.includes(letter.body));
    expect(malformed.map((letter) => letter.body).sort()).to.deep.equal([...poisoned].sort());
    expect(new Set(malformed.map((letter) => letter.code))).to.deep.equal(new Set(['MALFORMED_MESSAGE']));
    expect(deadLetters.filter((letter) => letter.keys?.some((key) => missingSources.includes(key)))).to.deep.equal([]);
    expect(totals.FilesGone ?? 0).to.equal(missingSources.length);
  });

  it('gives every dead letter a code and a reason a human can act on', () => {
    const unexplained = deadLetters.filter((letter) => !letter.code || !letter.reason || letter.reason.length < 10);
    const names = unexplained.map((letter) => (letter.keys ?? [letter.body.slice(0, 60)]).map((key) => JSON.stringify(key).slice(0, 60)).join(' '));
    expect(unexplained.length, `dead letters without a reason:\n${names.join('\n')}`).to.equal(0);
  });

  it('keeps memory bounded: RSS at the end within a bound of the start', () => {
    const start = rss[0]!.bytes;
    const end = rss.at(-1)!.bytes;
    const peak = Math.max(...rss.map((sample) => sample.bytes));
    // A leak grows with the objects handled; a high-water mark does not. Report both halves.
    const half = rss.find((sample) => sample.handled >= corpus.length / 2)?.bytes ?? start;
    const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
    console.log(`      RSS: start ${mib(start)}, half-way ${mib(half)}, peak ${mib(peak)}, end ${mib(end)} (${rss.length} samples)`);
    expect(end - start, `RSS grew ${mib(end - start)}`).to.be.below(RSS_GROWTH_BOUND);
  });
});
