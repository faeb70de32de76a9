/**
 * Builds the format registry of a process or thread: the built-in formats, then those of the plugin
 * modules that FORMAT_PLUGINS names. Every command and every worker thread gets its registry here,
 * so a format added by a module reaches `convert`, `serve` and the threads alike.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { registerBuiltinFormats } from './builtin.js';
import { FormatRegistry } from './registry.js';
import type { FormatPlugin } from './types.js';

/** A plugin module that cannot be loaded or does not export formats; the message names it. */
export class FormatPluginError extends Error {
  override readonly name = 'FormatPluginError';
}

const loaded = new Map<string, Promise<FormatRegistry>>();

/**
 * The registry for these plugin modules (loaded once per list). A module is a path (absolute, or
 * relative to the working directory), a file: URL or a package name; it exports a FormatPlugin, or
 * an array of them, as its default export or as `formats`.
 */
export function loadFormats(modules: readonly string[] = []): Promise<FormatRegistry> {
  const key = modules.join('\n');
  let registry = loaded.get(key);
  if (!registry) {
    registry = build(modules);
    loaded.set(key, registry);
    registry.catch(() => loaded.delete(key));
  }
  return registry;
}

async function build(modules: readonly string[]): Promise<FormatRegistry> {
  const registry = registerBuiltinFormats(new FormatRegistry(modules));
  for (const specifier of modules) {
    let exported: Record<string, unknown>;
    try {
      exported = (await import(importable(specifier))) as Record<string, unknown>;
    } catch (error) {
      throw new FormatPluginError(`format plugin module ${specifier} cannot be loaded: ${(error as Error).message}`, { cause: error });
    }
    const found = exported.formats ?? exported.default;
    const plugins = (Array.isArray(found) ? found : [found]) as unknown[];
    if (plugins.length === 0 || !plugins.every(isPlugin)) {
      throw new FormatPluginError(
        `format plugin module ${specifier} must export a format plugin (name, extension, contentType, compressions, createWriter), or an array of them, as its default export or as "formats"`,
      );
    }
    for (const plugin of plugins) {
      try {
        registry.register(plugin);
      } catch (error) {
        throw new FormatPluginError(`format plugin module ${specifier}: ${(error as Error).message}`);
      }
    }
  }
  return registry;
}

function importable(specifier: string): string {
  if (specifier.startsWith('file:')) return specifier;
  if (path.isAbsolute(specifier) || specifier.startsWith('.')) return pathToFileURL(path.resolve(specifier)).href;
  return specifier;
}

function isPlugin(value: unknown): value is FormatPlugin {
  const plugin = value as Partial<FormatPlugin> | undefined;
  return (
    typeof plugin === 'object' &&
    plugin !== null &&
    typeof plugin.name === 'string' &&
    /^[a-z0-9-]+$/.test(plugin.name) &&
    typeof plugin.extension === 'string' &&
    typeof plugin.contentType === 'string' &&
    Array.isArray(plugin.compressions) &&
    plugin.compressions.length > 0 &&
    typeof plugin.createWriter === 'function'
  );
}
