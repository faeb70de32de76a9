/** Formats come from one place: the built-in ones plus FORMAT_PLUGINS modules, with their settings and options. */
import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFormatNames, formatSettingRows, loadFormatOptions } from '../../src/config/format-settings.js';
import { SettingsError } from '../../src/config/settings.js';
import { loadFormats } from '../../src/formats/plugins.js';

const NDJSON_PLUGIN = fileURLToPath(new URL('../support/ndjson-format.js', import.meta.url));

describe('format plugins', () => {
  it('loads the built-in formats alone by default', async () => {
    const registry = await loadFormats();
    expect(registry.names()).to.deep.equal(['parquet', 'avro']);
    expect(registry.modules).to.deep.equal([]);
  });

  it('adds the formats of a plugin module, from a path or a file: URL', async () => {
    for (const specifier of [NDJSON_PLUGIN, new URL('../support/ndjson-format.js', import.meta.url).href]) {
      const registry = await loadFormats([specifier]);
      expect(registry.names()).to.deep.equal(['parquet', 'avro', 'ndjson']);
      expect(registry.get('ndjson').extension).to.equal('ndjson');
      expect(registry.modules).to.deep.equal([specifier]);
    }
  });

  it('says which module is wrong: missing, exporting no plugin, or naming a format twice', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-plugins-'));
    const notAPlugin = path.join(dir, 'not-a-plugin.mjs');
    await writeFile(notAPlugin, 'export default { name: "x" };\n');
    const twice = path.join(dir, 'twice.mjs');
    await writeFile(twice, 'export const formats = [{ name: "avro", extension: "a", contentType: "x", compressions: ["none"], createWriter() {} }];\n');
    const failure = (modules: string[]) => loadFormats(modules).then(() => 'loaded', (error: Error) => error.message);
    expect(await failure([path.join(dir, 'missing.mjs')])).to.match(/^format plugin module .*missing\.mjs cannot be loaded: /);
    expect(await failure([notAPlugin])).to.match(/not-a-plugin\.mjs must export a format plugin/);
    expect(await failure([twice])).to.match(/twice\.mjs: format "avro" is already registered/);
  });

  it('gives each format a codec setting from the registry: AVRO_CODEC as before, <NAME>_COMPRESSION otherwise', async () => {
    const registry = await loadFormats([NDJSON_PLUGIN]);
    expect(formatSettingRows(registry)).to.deep.equal([
      { name: 'PARQUET_COMPRESSION', default: 'snappy', description: 'Parquet page compression: snappy, none, gzip, zstd.' },
      { name: 'AVRO_CODEC', default: 'deflate', description: 'Avro block codec: deflate, null, snappy.' },
      { name: 'NDJSON_COMPRESSION', default: 'none', description: 'ndjson compression: none, gzip.' },
    ]);
    expect(loadFormatOptions(registry, {})).to.deep.equal({ parquet: { compression: 'snappy' }, avro: { compression: 'deflate' }, ndjson: { compression: 'none' } });
    expect(loadFormatOptions(registry, { PARQUET_COMPRESSION: 'ZSTD', NDJSON_COMPRESSION: 'gzip' })).to.deep.include({ parquet: { compression: 'zstd' }, ndjson: { compression: 'gzip' } });
  });

  it('refuses a codec the format does not offer, and FORMATS naming an unregistered format, naming the setting', async () => {
    const registry = await loadFormats([NDJSON_PLUGIN]);
    let error: unknown;
    try {
      loadFormatOptions(registry, { AVRO_CODEC: 'zstd', NDJSON_COMPRESSION: 'lz4' });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(SettingsError);
    expect((error as Error).message).to.equal(
      'invalid setting AVRO_CODEC="zstd": must be one of deflate, null, snappy\ninvalid setting NDJSON_COMPRESSION="lz4": must be one of none, gzip',
    );
    expect(() => checkFormatNames(['parquet', 'orc'], registry)).to.throw(SettingsError, 'invalid setting FORMATS="parquet,orc": unknown format "orc" (known: parquet, avro, ndjson; FORMAT_PLUGINS adds others)');
    expect(() => checkFormatNames(['parquet', 'ndjson'], registry)).to.not.throw();
  });
});
