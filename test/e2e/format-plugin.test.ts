/**
 * A team adds an output format with one module and one setting: FORMAT_PLUGINS names the module,
 * and `convert`, `serve` and their worker threads (the service's pool, the engine's format thread)
 * all write it, with its codec setting and flag taken from the plugin.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { startServiceProcess, type ServiceProcess } from '../support/service.js';
import { createTestPipeline, type TestPipeline } from '../support/pipeline.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const NDJSON_PLUGIN = fileURLToPath(new URL('../support/ndjson-format.js', import.meta.url));
const run = promisify(execFile);

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const CSV = 'id,day,amount,note\n9007199254740993,2024-02-29,2.5,"a, ""quoted"" note"\n2,,-1,\n';
const RECORDS = [
  { id: '9007199254740993', day: 19782, amount: 2.5, note: 'a, "quoted" note' },
  { id: '2', day: null, amount: -1, note: null },
];

function records(text: string): unknown[] {
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
}

describe('an output format added by a plugin module (FORMAT_PLUGINS)', function () {
  this.timeout(180_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-plugin-'));
  });

  it('convert writes it beside the built-in formats, with the codec flag the plugin declares', async () => {
    await writeFile(path.join(dir, 'notes.csv'), CSV);
    const result = await cli(
      ['convert', path.join(dir, 'notes.csv'), '--out', path.join(dir, 'out'), '--formats', 'parquet,ndjson', '--ndjson-compression', 'gzip', '--json'],
      { FORMAT_PLUGINS: NDJSON_PLUGIN },
    );
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    expect((await readdir(path.join(dir, 'out'))).sort()).to.deep.equal(['notes.ndjson', 'notes.parquet']);
    expect(records(gunzipSync(await readFile(path.join(dir, 'out', 'notes.ndjson'))).toString('utf8'))).to.deep.equal(RECORDS);
  });

  it('convert refuses the format, naming it, when no plugin provides it', async () => {
    const result = await cli(['convert', path.join(dir, 'notes.csv'), '--out', path.join(dir, 'none'), '--formats', 'ndjson'], {});
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/unknown format "ndjson" \(known: parquet, avro\)/);
  });

  it('a large file encodes it on the engine format thread, which loads the plugin itself', async () => {
    const lines = ['id,label,at'];
    for (let i = 0; i < 420_000; i++) lines.push(`${i},row number ${i} of a large file,2024-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`);
    await writeFile(path.join(dir, 'large.csv'), `${lines.join('\n')}\n`);
    const result = await cli(['convert', path.join(dir, 'large.csv'), '--out', path.join(dir, 'large'), '--formats', 'ndjson,avro', '--json'], {
      FORMAT_PLUGINS: NDJSON_PLUGIN,
    });
    expect(result.code, result.stderr).to.equal(0);
    const [entry] = JSON.parse(result.stdout) as { summary: { bytesIn: number; formatThread: boolean; rows: number } }[];
    expect(entry!.summary.bytesIn).to.be.above(16 * 1024 * 1024);
    expect(entry!.summary.formatThread).to.equal(true);
    const written = records(await readFile(path.join(dir, 'large', 'large.ndjson'), 'utf8')) as { id: string }[];
    expect(written).to.have.length(420_000);
    expect(written.every((record, i) => record.id === String(i))).to.equal(true);
  });

  describe('serve', () => {
    let pipeline: TestPipeline;
    let service: ServiceProcess | undefined;

    before(async () => {
      pipeline = await createTestPipeline('plugin');
    });

    after(async () => {
      if (service) expect(await service.stop()).to.equal(0);
      pipeline?.close();
    });

    it('refuses to start when FORMATS names a format no module provides, naming the setting', async () => {
      const refused = await cli(['serve'], { ...pipeline.env, FORMATS: 'parquet,ndjson', HEALTH_PORT: '0' });
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.match(/invalid setting FORMATS="parquet,ndjson": unknown format "ndjson"/);
    });

    it('refuses to start when FORMAT_PLUGINS names a module that cannot be loaded, or a codec the plugin lacks', async () => {
      const missing = await cli(['serve'], { ...pipeline.env, FORMAT_PLUGINS: path.join(dir, 'missing.js'), HEALTH_PORT: '0' });
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.match(/invalid setting FORMAT_PLUGINS: format plugin module .*missing\.js cannot be loaded/);
      const codec = await cli(['serve'], { ...pipeline.env, FORMAT_PLUGINS: NDJSON_PLUGIN, NDJSON_COMPRESSION: 'zstd', HEALTH_PORT: '0' });
      expect(codec.code).to.equal(2);
      expect(codec.stderr).to.match(/invalid setting NDJSON_COMPRESSION="zstd": must be one of none, gzip/);
    });

    it('writes it for every notification, from its worker threads, with its codec setting', async () => {
      service = await startServiceProcess({
        ...pipeline.env,
        FORMATS: 'parquet,avro,ndjson',
        FORMAT_PLUGINS: NDJSON_PLUGIN,
        NDJSON_COMPRESSION: 'gzip',
        WORKER_THREADS: '2',
      });
      await pipeline.put('incoming/notes.csv', CSV);
      for (const key of ['parquet/incoming/notes.parquet', 'avro/incoming/notes.avro', 'ndjson/incoming/notes.ndjson']) {
        await pipeline.waitForObject(pipeline.outputBucket, key);
      }
      await pipeline.download(pipeline.outputBucket, 'ndjson/incoming/notes.ndjson', path.join(dir, 'served.ndjson'));
      expect(records(gunzipSync(await readFile(path.join(dir, 'served.ndjson'))).toString('utf8'))).to.deep.equal(RECORDS);
    });
  });
});
