import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { outputName, registerConvertCommand } from '../../src/cli/convert.js';
import { loadFormats } from '../../src/formats/plugins.js';
import { REPO_ROOT } from '../deploy/deploy-files.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the convert command', () => {
  it('documents every option it takes in the README’s options table', async () => {
    const program = new Command('s3-csv-converter');
    registerConvertCommand(program, { registry: await loadFormats([]), clients: () => { throw new Error('no AWS here'); } });
    const convert = program.commands.find((command) => command.name() === 'convert')!;
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const flags = convert.options.map((option) => option.long!).filter(Boolean);
    expect(flags).to.include.members(['--out', '--json', '--no-progress', '--schema-registry']);
    expect(flags.filter((flag) => !readme.includes(`\`${flag}`)), 'options missing from the README').to.deep.equal([]);
  });

  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-cli-'));
  });

  it('names outputs after the input without .csv or .csv.gz', () => {
    expect(outputName('/data/sales.csv')).to.equal('sales');
    expect(outputName('/data/sales.2024.csv.gz')).to.equal('sales.2024');
    expect(outputName('s3://bucket/in/x y.csv')).to.equal('x y');
  });

  it('converts several inputs, prints a JSON summary, and exits 0', async () => {
    await writeFile(path.join(dir, 'a.csv'), 'id,ok\n1,true\n');
    await writeFile(path.join(dir, 'b.csv'), 'when\n2024-01-01T00:00:00Z\n');
    const result = await cli(['convert', path.join(dir, 'a.csv'), path.join(dir, 'b.csv'), '--out', path.join(dir, 'out'), '--json']);
    expect(result.code).to.equal(0);
    const summary = JSON.parse(result.stdout) as { ok: boolean; summary: { rows: number; columns: { type: string }[] } }[];
    expect(summary.map((entry) => entry.ok)).to.deep.equal([true, true]);
    expect(summary[1]!.summary.columns[0]!.type).to.equal('timestamp');
    expect((await readdir(path.join(dir, 'out'))).sort()).to.deep.equal(['a.avro', 'a.parquet', 'b.avro', 'b.parquet']);
  });

  it('exits non-zero when an input fails, says why, and writes nothing for it', async () => {
    await writeFile(path.join(dir, 'good.csv'), 'x\n1\n');
    await writeFile(path.join(dir, 'empty.csv'), '');
    const result = await cli(['convert', path.join(dir, 'good.csv'), path.join(dir, 'empty.csv'), '--out', path.join(dir, 'out')]);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/empty\.csv: .*empty/);
    expect((await readdir(path.join(dir, 'out'))).sort()).to.deep.equal(['good.avro', 'good.parquet']);
  });

  it('honours --formats, codecs and --schema', async () => {
    await writeFile(path.join(dir, 'z.csv'), 'zip,n\n02134,1\n');
    await writeFile(path.join(dir, 'schema.json'), JSON.stringify({ n: 'double' }));
    const result = await cli([
      'convert', path.join(dir, 'z.csv'), '--out', path.join(dir, 'out'), '--formats', 'parquet',
      '--parquet-compression', 'zstd', '--schema', path.join(dir, 'schema.json'), '--json',
    ]);
    expect(result.code).to.equal(0);
    const [entry] = JSON.parse(result.stdout) as { summary: { columns: { name: string; type: string }[] } }[];
    expect(entry!.summary.columns).to.deep.equal([
      { name: 'zip', type: 'string' },
      { name: 'n', type: 'double' },
    ]);
    expect(await readdir(path.join(dir, 'out'))).to.deep.equal(['z.parquet']);
  });

  it('rejects an unknown codec with a message naming the option', async () => {
    const result = await cli(['convert', 'x.csv', '--out', dir, '--avro-codec', 'lz4']);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/--avro-codec/);
  });
});
