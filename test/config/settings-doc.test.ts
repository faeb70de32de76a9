import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { readSettingsBlock, replaceSettingsBlock, settingsTable } from '../../src/cli/settings-doc.js';
import { SETTING_DEFINITIONS } from '../../src/config/settings.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Runs from dist/test/config: the repository root is three levels up.
const REPO_ROOT = path.resolve(here, '../../..');
const SCRIPT = path.resolve(here, '../../src/cli/settings-doc.js');

describe('settings documentation', () => {
  it('has one table row per setting, in definition order', () => {
    const lines = settingsTable().split('\n');
    expect(lines[0]).to.equal('| Setting | Default | Meaning |');
    // The built-in formats' codec settings come from the format registry, after FORMAT_PLUGINS.
    expect(lines).to.have.length(SETTING_DEFINITIONS.length + 2 + 2);
    const plugins = lines.findIndex((l) => l.startsWith('| `FORMAT_PLUGINS`'));
    expect(lines[plugins + 1]).to.match(/^\| `PARQUET_COMPRESSION` \| `snappy` \| /);
    expect(lines[plugins + 2]).to.match(/^\| `AVRO_CODEC` \| `deflate` \| /);
    expect(lines[2]).to.match(/^\| `QUEUE_URL` \| required \| /);
    expect(lines.find((l) => l.startsWith('| `BATCH_SIZE`'))).to.equal(
      '| `BATCH_SIZE` | `10` | Messages asked for per SQS receive (1–10). |',
    );
  });

  it('escapes pipes so every row keeps three cells', () => {
    for (const line of settingsTable().split('\n')) {
      expect(line.replace(/\\\|/g, '').split('|'), line).to.have.length(5);
    }
  });

  it('replaces only the block between the markers', () => {
    const readme = '# Title\n\n<!-- settings:start -->\nold\n<!-- settings:end -->\n\nAfter.\n';
    const updated = replaceSettingsBlock(readme, '| new |');
    expect(updated).to.equal('# Title\n\n<!-- settings:start -->\n| new |\n<!-- settings:end -->\n\nAfter.\n');
    expect(readSettingsBlock(updated)).to.equal('| new |');
  });

  it('says how to fix a README without markers', () => {
    expect(() => readSettingsBlock('# Title\n', 'README.md')).to.throw(
      'README.md has no settings block: add a line <!-- settings:start --> and, below it, a line <!-- settings:end -->',
    );
  });

  it('writes and checks a README from the command line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'settings-doc-'));
    try {
      const readme = path.join(dir, 'README.md');
      writeFileSync(readme, '# Service\n\n<!-- settings:start -->\n<!-- settings:end -->\n');
      const run = (...args: string[]) => promisify(execFile)(process.execPath, [SCRIPT, ...args]);
      await run('--write', readme);
      expect(readSettingsBlock(readFileSync(readme, 'utf8'))).to.equal(settingsTable());
      await run('--check', readme);
      writeFileSync(readme, readFileSync(readme, 'utf8').replace('`16`', '`17`'));
      const failure = await run('--check', readme).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failure?.code).to.equal(1);
      expect(failure?.stderr).to.match(/out of date; run: .*--write/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is current in the repository README', () => {
    const readmePath = path.join(REPO_ROOT, 'README.md');
    if (!existsSync(readmePath)) {
      expect.fail(`${readmePath} does not exist: create it with a <!-- settings:start --> / <!-- settings:end --> block`);
    }
    const block = readSettingsBlock(readFileSync(readmePath, 'utf8'), readmePath);
    expect(block, 'README.md settings table is out of date: run `node dist/src/cli/settings-doc.js --write README.md`').to.equal(
      settingsTable(),
    );
  });
});
