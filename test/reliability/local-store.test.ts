/**
 * The local store maps keys to files. Whatever the key (traversal in every spelling, absolute
 * paths, NUL bytes, control characters, the longest names), nothing is written, replaced or
 * deleted outside its root, and nothing is left behind by an aborted write.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalStore } from '../../src/storage/local.js';
import { hostileLocalKeys } from '../support/hostile-corpus.js';

/** Every file under `dir` (recursively) with a hash of its content; directories as `dir/`. */
async function snapshot(dir: string, skip?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(current: string): Promise<void> {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (skip && full === skip) continue;
      if (entry.isDirectory()) {
        out.set(`${full}/`, 'dir');
        await walk(full);
      } else {
        out.set(full, createHash('sha256').update(await readFile(full)).digest('hex'));
      }
    }
  }
  await walk(dir);
  return out;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe('reliability: LocalStore never leaves its root', () => {
  let sandbox: string;
  let root: string;

  beforeEach(async () => {
    // The root sits three levels deep, so every `../` spelling still lands inside the sandbox.
    sandbox = await mkdtemp(path.join(os.tmpdir(), 's3cc-local-'));
    root = path.join(sandbox, 'a', 'b', 'root');
    await mkdir(root, { recursive: true });
    for (const file of ['sentinel', 'a/sentinel', 'a/b/sentinel', 'a/b/outside.csv', 'a/b/root-sibling/file.csv', 'outside.csv']) {
      await mkdir(path.dirname(path.join(sandbox, file)), { recursive: true });
      await writeFile(path.join(sandbox, file), `do not touch ${file}\n`);
    }
  });

  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true });
  });

  it('writes, reads and deletes hostile keys only inside the root', async () => {
    const store = new LocalStore(root);
    const keys = hostileLocalKeys(0x5eed);
    expect(keys.length).to.be.greaterThan(100);
    const before = await snapshot(sandbox, root);
    const outcomes = { written: 0, refused: 0 };
    const written: string[] = [];

    for (const key of keys) {
      let target: string | undefined;
      try {
        target = store.resolve(key);
      } catch {
        // Refused up front: nothing may have happened.
      }
      if (target !== undefined) {
        expect(path.relative(root, target).startsWith('..'), `${JSON.stringify(key)} -> ${target}`).to.equal(false);
        expect(target.startsWith(root + path.sep), `${JSON.stringify(key)} -> ${target}`).to.equal(true);
      }
      try {
        const pending = await store.put(key, { contentType: 'text/csv' });
        await pending.write(Buffer.from(`written under ${JSON.stringify(key)}\n`));
        await pending.commit();
        outcomes.written += 1;
        written.push(key);
      } catch {
        outcomes.refused += 1;
      }
      // Reads and deletes are held to the same rule.
      await store.head(key).catch(() => undefined);
      await store.get(key).then(
        (object) => object.body.destroy(),
        () => undefined,
      );
    }
    // Deleting everything, including keys that name files outside, removes only what is inside.
    for (const key of keys) await store.delete(key).catch(() => undefined);

    expect(await snapshot(sandbox, root)).to.deep.equal(before);
    for (const file of ['/etc/passwd', '/tmp/outside.csv', path.join(os.tmpdir(), 'outside.csv')]) {
      if (await exists(file)) expect(await readFile(file, 'utf8')).to.not.match(/^written under/);
    }
    // Nothing but directories remains in the root: every written file was deleted again, and no
    // temporary file of a refused or failed write was left.
    const left = [...(await snapshot(root)).keys()].filter((entry) => !entry.endsWith('/'));
    expect(left, 'files left in the root').to.deep.equal([]);
    expect(outcomes.written, 'some hostile keys are legitimate names inside the root').to.be.greaterThan(20);
    console.log(`      ${keys.length} hostile keys: ${outcomes.written} written inside the root, ${outcomes.refused} refused`);
  });

  it('leaves no temporary file behind when a write is aborted', async () => {
    const store = new LocalStore(root);
    for (const key of hostileLocalKeys(7).slice(0, 60)) {
      const pending = await store.put(key, { contentType: 'text/csv' }).catch(() => undefined);
      if (!pending) continue;
      await pending.write(Buffer.alloc(1 << 16, 1)).catch(() => undefined);
      await pending.abort();
      await pending.abort(); // twice is allowed
    }
    const left = [...(await snapshot(sandbox)).keys()].filter((entry) => entry.endsWith('.tmp'));
    expect(left).to.deep.equal([]);
  });
});
