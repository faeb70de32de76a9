/**
 * What this process converted a moment ago, or is converting now, by object version (bucket, key,
 * ETag). S3 and SQS deliver at least once: a repeated notification that reaches the same task is
 * answered here without a single AWS call, and a burst of identical ones waits for the first
 * instead of converting the same version side by side.
 */
import type { TaskResult } from './worker.js';

export interface ObjectVersion {
  bucket: string;
  key: string;
  etag: string;
}

export class RecentConversions {
  readonly #pending = new Map<string, Promise<boolean>>();
  /** Version → when it stops counting as recent. A Map keeps insertion order: the oldest go first. */
  readonly #converted = new Map<string, number>();

  constructor(
    private readonly capacity = 10_000,
    private readonly ttlMs = 15 * 60_000,
  ) {}

  /** True when this exact version was converted here within the last `ttlMs`. */
  wasConverted(version: ObjectVersion): boolean {
    const id = idOf(version);
    const until = this.#converted.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#converted.delete(id);
    return false;
  }

  /** The conversion of this version under way here, if any; it resolves to whether it converted. */
  pending(version: ObjectVersion): Promise<boolean> | undefined {
    return this.#pending.get(idOf(version));
  }

  /** Follows a conversion of `version` until it settles, remembering it if it converted. */
  track(version: ObjectVersion, work: Promise<TaskResult>): void {
    const id = idOf(version);
    const settled = work.then(
      (result) => result.outcome !== 'failed',
      () => false,
    );
    this.#pending.set(id, settled);
    void settled.then((converted) => {
      if (this.#pending.get(id) === settled) this.#pending.delete(id);
      if (converted) this.#remember(id);
    });
  }

  #remember(id: string): void {
    this.#converted.delete(id);
    this.#converted.set(id, Date.now() + this.ttlMs);
    while (this.#converted.size > this.capacity) this.#converted.delete(this.#converted.keys().next().value!);
  }
}

function idOf(version: ObjectVersion): string {
  return `${version.bucket}\n${version.key}\n${version.etag}`;
}
