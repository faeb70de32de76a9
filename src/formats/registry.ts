/** Holds format plugins by name; the engine looks formats up here and never names a concrete one. */
import type { FormatPlugin } from './types.js';

export class FormatRegistry {
  readonly #plugins = new Map<string, FormatPlugin>();

  register(plugin: FormatPlugin): this {
    if (this.#plugins.has(plugin.name)) throw new Error(`format "${plugin.name}" is already registered`);
    this.#plugins.set(plugin.name, plugin);
    return this;
  }

  get(name: string): FormatPlugin {
    const plugin = this.#plugins.get(name);
    if (!plugin) throw new Error(`unknown format "${name}" (known: ${this.names().join(', ')})`);
    return plugin;
  }

  has(name: string): boolean {
    return this.#plugins.has(name);
  }

  names(): string[] {
    return [...this.#plugins.keys()];
  }
}
