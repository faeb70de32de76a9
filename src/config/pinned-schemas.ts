/**
 * Loads SCHEMA_MAP: the pinned schema of each key prefix. Files are re-read after a short time, so an
 * operator can pin a schema for a failing prefix and redrive its dead letters without a restart.
 */
import { text } from 'node:stream/consumers';
import { parsePinnedSchema } from '../csv/pinned.js';
import { parseSchemaMapJson, type SchemaMapEntries, type SchemaMapSetting } from './schema-map.js';
import type { Stores } from '../storage/location.js';
import type { ColumnType } from '../types.js';

type PinnedTypes = ReadonlyMap<string, ColumnType>;

export class SchemaMap {
  readonly #cache = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(
    private readonly setting: SchemaMapSetting | undefined,
    private readonly stores: Stores,
    private readonly maxAgeMs = 30_000,
  ) {}

  /** The pinned types of the longest prefix that matches `key`, if any. */
  async typesFor(key: string): Promise<PinnedTypes | undefined> {
    if (!this.setting) return undefined;
    const entries = await this.entries();
    let best: string | undefined;
    for (const prefix of Object.keys(entries)) {
      if (key.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
    }
    if (best === undefined) return undefined;
    const location = entries[best]!;
    return this.#cached(`schema:${location}`, async () => parsePinnedSchema(await this.#read(location), location));
  }

  /** Loads the map once at start-up so a bad map stops the service before it takes messages. */
  async check(): Promise<void> {
    if (!this.setting) return;
    const entries = await this.entries();
    await Promise.all(Object.keys(entries).map((prefix) => this.typesFor(prefix)));
  }

  private async entries(): Promise<SchemaMapEntries> {
    const setting = this.setting!;
    if (setting.kind === 'inline') return setting.entries;
    return this.#cached(`map:${setting.location}`, async () =>
      parseSchemaMapJson(await this.#read(setting.location), `SCHEMA_MAP (${setting.location})`),
    );
  }

  async #read(location: string): Promise<string> {
    const { store, key } = this.stores.input(location);
    const object = await store.get(key);
    return text(object.body);
  }

  #cached<T>(name: string, load: () => Promise<T>): Promise<T> {
    const hit = this.#cache.get(name);
    if (hit && Date.now() - hit.at < this.maxAgeMs) return hit.value as Promise<T>;
    const value = load();
    // A failed load is not cached: the next file tries again.
    value.catch(() => this.#cache.delete(name));
    this.#cache.set(name, { at: Date.now(), value });
    return value;
  }
}
