// Sorts the compiled test files (dist/test/**/*.test.js) into the groups scripts/test.sh runs, from
// what each file imports, so a new test file lands in the right group without a list to maintain:
//   unit        reaches no emulator: no import of test/support/emulator.js, directly or through helpers
//   emulator    reaches the emulator; run against LocalStack where a container runtime can be had
//   moto        reaches the emulator and sits under test/reliability/: the fault-proxy tests, kept on moto
//
//   node scripts/test-plan.mjs unit|emulator|moto   # prints that group's files, one a line
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const EMULATOR = join(dist, 'test', 'support', 'emulator.js');
const MOTO_ONLY = join(dist, 'test', 'reliability') + '/';
const GROUPS = ['unit', 'emulator', 'moto'];

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return testFiles(path);
      return entry.name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

/** Relative imports of a compiled module: static `from '…'`, bare `import '…'` and `import('…')`. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
  return specifiers.map((specifier) => resolve(dirname(file), specifier));
}

const parsed = new Map();
function reaches(file) {
  const queue = [file];
  const seen = new Set(queue);
  while (queue.length > 0) {
    const current = queue.shift();
    if (current === EMULATOR) return true;
    if (!parsed.has(current)) {
      let next = [];
      try {
        next = importsOf(current);
      } catch {
        // not a file we compiled (e.g. a JSON import)
      }
      parsed.set(current, next);
    }
    for (const next of parsed.get(current)) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}

const group = process.argv[2];
if (!GROUPS.includes(group)) {
  process.stderr.write(`usage: node scripts/test-plan.mjs ${GROUPS.join('|')}\n`);
  process.exit(2);
}
const files = testFiles(join(dist, 'test')).filter((file) => {
  if (!reaches(file)) return group === 'unit';
  return file.startsWith(MOTO_ONLY) ? group === 'moto' : group === 'emulator';
});
process.stdout.write(files.map((file) => relative(root, file)).join('\n') + (files.length ? '\n' : ''));
