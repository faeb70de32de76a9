/**
 * Admission by size on real worker threads, and a crash charged only to the file that caused it
 * (a stand-in worker that fills its heap, so no emulator is needed).
 */
import { expect } from 'chai';
import { ConversionPool, WorkerCrashError } from '../../src/service/pool.js';
import type { PoolTestTask } from './fixtures/pool-worker.js';

type Result = { id: string; started: number; ended: number };
const WORKER = new URL('./fixtures/pool-worker.js', import.meta.url).href;

describe('worker pool: admission by size, crashes charged to their file', function () {
  this.timeout(60_000);
  let pools: ConversionPool<PoolTestTask, Result>[] = [];
  const pool = (threads: number, budgetBytes = 100) => {
    const made = new ConversionPool<PoolTestTask, Result>({ threads, heapMb: 32, budgetBytes, filename: WORKER });
    pools.push(made);
    return made;
  };
  afterEach(async () => {
    await Promise.all(pools.map((p) => p.close()));
    pools = [];
  });

  const overlap = (a: Result, b: Result) => a.started < b.ended && b.started < a.ended;

  it('lets files share a thread while their sizes fit its budget, and runs a file that fills it alone', async () => {
    const p = pool(1, 100);
    const [a, b, heavy, c] = await Promise.all([
      p.run({ id: 'a', ms: 300 }, { weight: 40 }),
      p.run({ id: 'b', ms: 300 }, { weight: 40 }),
      p.run({ id: 'heavy', ms: 300 }, { weight: 150 }),
      p.run({ id: 'c', ms: 300 }, { weight: 10 }),
    ]);
    expect(overlap(a!, b!), 'two files within the budget share the thread').to.equal(true);
    for (const other of [a!, b!, c!]) expect(overlap(heavy!, other), `the heavy file beside ${other.id}`).to.equal(false);
    // First come, first served: the small file queued behind the heavy one waits for it.
    expect(c!.started).to.be.at.least(heavy!.ended);
  });

  it('a light task (a small file) never waits behind a heavy file: it shares the thread at once', async () => {
    const p = pool(1, 100);
    const heavy = p.run({ id: 'heavy', ms: 800 }, { weight: 150 });
    const queued = p.run({ id: 'queued-file', ms: 10 }, { weight: 10 });
    const light = await p.run({ id: 'light', ms: 10 }, { weight: 20_000, light: true });
    const [h, q] = await Promise.all([heavy, queued]);
    expect(light.ended, 'the light task finished while the heavy file ran').to.be.below(h.ended);
    expect(q.started, 'a file still waits for the heavy one').to.be.at.least(h.ended);
  });

  it('a file that runs its thread out of memory alone is charged with it; a file on another thread is unharmed', async () => {
    const p = pool(2, 100);
    const [crashed, bystander] = await Promise.allSettled([p.run({ id: 'hog', ms: 0, exhaustHeap: true }, { weight: 150 }), p.run({ id: 'ok', ms: 500 }, { weight: 150 })]);
    expect(crashed.status).to.equal('rejected');
    const error = (crashed as PromiseRejectedResult).reason as WorkerCrashError;
    expect(error).to.be.instanceOf(WorkerCrashError);
    expect(error.code).to.equal('ERR_WORKER_OUT_OF_MEMORY');
    expect(bystander.status).to.equal('fulfilled');
    // The thread was replaced: the pool keeps converting.
    expect((await p.run({ id: 'after', ms: 10 }, { weight: 1 })).id).to.equal('after');
  });

  it('when a shared thread dies, its files run again alone: the innocent ones convert, only the culprit is charged', async () => {
    const p = pool(1, 100);
    const results = await Promise.allSettled([
      p.run({ id: 'innocent-1', ms: 400 }, { weight: 10 }),
      p.run({ id: 'hog', ms: 0, exhaustHeap: true }, { weight: 10 }),
      p.run({ id: 'innocent-2', ms: 400 }, { weight: 10, light: true }),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(((results[1] as PromiseRejectedResult).reason as WorkerCrashError).code).to.equal('ERR_WORKER_OUT_OF_MEMORY');
  });
});
