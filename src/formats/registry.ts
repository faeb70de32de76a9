/** Holds format plugins by name; the engine looks formats up here and never names a concrete one. */
import type { FormatPlugin } from './types.js';

/** A plugin's codec option with its defaults filled in. */
export interface CompressionOption {
  format: string;
  /** Environment variable, e.g. `AVRO_CODEC`. */
  setting: string;
  /** Flag without dashes, e.g. `avro-codec`. */
  flag: string;
  description: string;
  /** Allowed codecs, default first. */
  choices: readonly string[];
}

export function compressionOption(plugin: FormatPlugin): CompressionOption {
  const option = plugin.compressionOption ?? {};
  return {
    format: plugin.name,
    setting: option.setting ?? `${plugin.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_COMPRESSION`,
    flag: option.flag ?? `${plugin.name}-compression`,
    description: option.description ?? `${plugin.name} compression`,
    choices: plugin.compressions,
  };
}

export class FormatRegistry {
  readonly #plugins = new Map<string, FormatPlugin>();

  /**
   * @param modules set by `loadFormats`: the plugin modules that rebuild this very registry in another
   *   thread (the built-in formats plus these). Undefined for a registry assembled by hand, whose
   *   formats stay on the thread that registered them.
   */
  constructor(readonly modules?: readonly string[]) {}

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

  /** Every registered format's codec option, in registration order. */
  compressionOptions(): CompressionOption[] {
    return [...this.#plugins.values()].map(compressionOption);
  }
}
