/** scripts/test-plan.mjs sorts the compiled test files into the groups scripts/test.sh runs. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../deploy/deploy-files.js';

const run = promisify(execFile);

async function group(name: string): Promise<string[]> {
  const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'test-plan.mjs'), name], { cwd: REPO_ROOT });
  return stdout.split('\n').filter(Boolean);
}

function compiledTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return compiledTests(path);
    return entry.name.endsWith('.test.js') ? [relative(REPO_ROOT, path)] : [];
  });
}

describe('the test plan (scripts/test-plan.mjs)', () => {
  it('puts every compiled test file in exactly one group', async () => {
    const [unit, emulator, moto] = await Promise.all([group('unit'), group('emulator'), group('moto')]);
    const all = [...unit, ...emulator, ...moto];
    expect(new Set(all).size).to.equal(all.length);
    expect(all.sort()).to.deep.equal(compiledTests(join(REPO_ROOT, 'dist', 'test')).sort());
  });

  it('sorts by what a file reaches: the emulator directly or through helpers, and test/reliability/ on moto', async () => {
    const [unit, emulator, moto] = await Promise.all([group('unit'), group('emulator'), group('moto')]);
    // Directly (test/support/emulator.ts), through test/support/pipeline.ts, and through both.
    expect(emulator).to.include.members(['dist/test/e2e/setup.test.js', 'dist/test/dlq/native.test.js', 'dist/test/e2e/container.test.js']);
    expect(unit).to.include.members(['dist/test/deploy/compose.test.js', 'dist/test/scripts/test-plan.test.js', 'dist/test/events/parse.test.js']);
    expect(moto.length).to.be.greaterThan(0);
    for (const file of moto) expect(file).to.match(/^dist\/test\/reliability\//);
    for (const file of unit) expect(file, file).not.to.match(/^dist\/test\/e2e\//);
  });

  it('refuses a group it does not know', async () => {
    const failed = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'test-plan.mjs'), 'everything']).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failed?.code).to.equal(2);
    expect(failed?.stderr).to.include('usage:');
  });
});
