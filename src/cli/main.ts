#!/usr/bin/env node
/**
 * The `s3-csv-converter` executable: checks the Node version, then loads the program. The check
 * comes first and the program is imported only after it, because on an older Node the program does
 * not even load (node:zlib has zstdCompressSync from 22.15 on): a newcomer gets one line saying what
 * to do instead of a SyntaxError stack. package.json's `engines` says the same version.
 */
const NEEDED = { major: 22, minor: 15 };

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < NEEDED.major || (major === NEEDED.major && minor < NEEDED.minor)) {
  process.stderr.write(
    `s3-csv-converter needs Node.js ${NEEDED.major}.${NEEDED.minor} or later, and this is ${process.version}: ` +
      'in the repository run `. ./.ci/node22.sh` first (the README’s first step puts Node 22 on PATH), or install Node 22 LTS from https://nodejs.org\n',
  );
  process.exit(1);
}

await import('./program.js');
