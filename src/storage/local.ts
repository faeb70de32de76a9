/** A directory as an object store: outputs appear by rename, and no key can escape the root. */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { ObjectGoneError } from '../errors.js';
import type { CommitCondition, GetOptions, ObjectHead, ObjectStore, PendingObject, PutOptions, SourceObject, StoreDescriptor } from './types.js';

export class LocalStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Maps a key to a path under the root; refuses anything that would land outside it. */
  resolve(key: string): string {
    if (key.length === 0 || key.includes('\0')) throw new Error(`invalid key ${JSON.stringify(key)}`);
    const target = path.resolve(this.root, ...key.split('/'));
    const relative = path.relative(this.root, target);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new Error(`key ${JSON.stringify(key)} resolves outside ${this.root}`);
    }
    return target;
  }

  async get(key: string, options: GetOptions = {}): Promise<SourceObject> {
    // Files have no ETag to compare: a version cannot be asked for.
    if (options.ifMatch !== undefined) throw new Error(`${this.root}: a local directory cannot read a given version (ifMatch)`);
    const file = this.resolve(key);
    try {
      const info = await stat(file);
      return { body: createReadStream(file, { highWaterMark: 1 << 20 }), size: info.size };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectGoneError(`${file} does not exist`);
      throw error;
    }
  }

  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const info = await stat(this.resolve(key));
      return { size: info.size, metadata: {} };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(key: string, _options: PutOptions): Promise<PendingObject> {
    const target = this.resolve(key);
    await mkdir(path.dirname(target), { recursive: true });
    // A hidden temporary name in the same directory, so the final rename is atomic.
    const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
    return new LocalPendingObject(temporary, target);
  }

  async delete(key: string): Promise<void> {
    await rm(this.resolve(key), { force: true });
  }

  async describe(): Promise<StoreDescriptor> {
    return { kind: 'local', root: this.root };
  }
}

class LocalPendingObject implements PendingObject {
  readonly #stream: WriteStream;
  #failure: Error | undefined;
  #bytes = 0;

  constructor(
    private readonly temporary: string,
    private readonly target: string,
  ) {
    this.#stream = createWriteStream(temporary, { flags: 'wx' });
    this.#stream.on('error', (error) => {
      this.#failure = error;
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#bytes += chunk.byteLength;
    if (!this.#stream.write(chunk)) await once(this.#stream, 'drain');
  }

  async commit(condition?: CommitCondition): Promise<number> {
    if (condition !== undefined) throw new Error(`${this.target}: a local directory takes no conditional writes`);
    if (this.#failure) throw this.#failure;
    this.#stream.end();
    await once(this.#stream, 'close');
    if (this.#failure) throw this.#failure;
    await rename(this.temporary, this.target);
    return this.#bytes;
  }

  async abort(): Promise<void> {
    if (!this.#stream.closed) {
      this.#stream.destroy();
      await once(this.#stream, 'close').catch(() => undefined);
    }
    await rm(this.temporary, { force: true }).catch(() => undefined);
  }
}
