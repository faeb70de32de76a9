import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, readRepoFile } from './deploy-files.js';

interface Stage {
  from: string;
  name: string | undefined;
  instructions: { keyword: string; args: string }[];
}

/** The Dockerfile as stages of instructions (continuation lines joined, comments dropped). */
function stages(text: string): Stage[] {
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const result: Stage[] = [];
  for (const line of lines) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword === 'FROM') {
      const [from, , name] = args.split(/\s+/);
      result.push({ from: from!, name, instructions: [] });
    } else {
      result.at(-1)?.instructions.push({ keyword, args });
    }
  }
  return result;
}

describe('Dockerfile', () => {
  const text = readRepoFile('Dockerfile');
  const all = stages(text);
  const runtime = all.at(-1)!;
  const final = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

  it('builds on node:22-bookworm-slim by default, overridable with the BASE_IMAGE build argument', () => {
    expect(text).to.match(/^ARG BASE_IMAGE=node:22-bookworm-slim$/m);
    const names = all.map((s) => s.name);
    for (const stage of all) expect(['${BASE_IMAGE}', ...names], stage.from).to.include(stage.from);
    expect(runtime.from).to.equal('${BASE_IMAGE}');
  });

  it('compiles in a stage with dev dependencies and runs with the production ones only', () => {
    const copies = final('COPY');
    const fromStage = (path: string) => copies.find((c) => c.endsWith(` ./${path}`) || c.includes(` /app/${path} `))?.match(/--from=(\S+)/)?.[1];
    const prune = all.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /npm prune --omit=dev/.test(i.args)));
    expect(fromStage('node_modules')).to.equal(prune?.name);
    expect(copies.some((c) => /--from=\S+ \/app\/dist\/src /.test(c))).to.equal(true);
    expect(final('RUN'), 'nothing installed or run in the runtime stage').to.deep.equal([]);
  });

  it('uses the extra CA build secret only for npm ci, and never copies it', () => {
    const runs = all.flatMap((s) => s.instructions).filter((i) => i.keyword === 'RUN');
    const withSecret = runs.filter((i) => i.args.includes('type=secret'));
    expect(withSecret).to.have.length(1);
    expect(withSecret[0]!.args).to.match(/--mount=type=secret,id=extra_ca/);
    expect(withSecret[0]!.args).to.match(/npm ci/);
    expect(text.match(/NODE_EXTRA_CA_CERTS/g)).to.have.length(1);
    for (const i of all.flatMap((s) => s.instructions)) {
      if (i.keyword === 'ENV' || i.keyword === 'ARG') expect(i.args).not.to.match(/CA|CERT/);
      if (i.keyword === 'COPY' || i.keyword === 'ADD') expect(i.args).not.to.match(/\.pem|\.crt|secret/i);
    }
  });

  it('runs node itself as the non-root node user, with /tmp as the only writable volume and a curl-free HEALTHCHECK', () => {
    expect(final('USER')).to.deep.equal(['1000:1000']);
    expect(JSON.parse(final('ENTRYPOINT')[0]!)).to.deep.equal(['node', '/app/dist/src/cli/main.js']);
    expect(JSON.parse(final('CMD')[0]!)).to.deep.equal(['serve']);
    expect(JSON.parse(final('VOLUME')[0]!)).to.deep.equal(['/tmp']);
    expect(final('ENV').join(' ')).to.include('TMP_DIR=/tmp');
    expect(final('HEALTHCHECK')[0]).to.match(/CMD \["node", "\/app\/docker\/healthcheck\.mjs"\]$/);
    expect(final('COPY')).to.include('docker/healthcheck.mjs ./docker/healthcheck.mjs');
    expect(final('COPY').some((c) => c.includes('package.json')), 'package.json says the code is ESM').to.equal(true);
  });

  it('.dockerignore admits only what the build copies, and all of it exists', () => {
    const rules = readRepoFile('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(rules[0]).to.equal('*');
    const admitted = rules.slice(1).map((rule) => {
      expect(rule.startsWith('!'), rule).to.equal(true);
      return rule.slice(1).replace(/\/$/, '');
    });
    for (const path of admitted) expect(existsSync(join(REPO_ROOT, path)), path).to.equal(true);
    const fromContext = all
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const source of fromContext) expect(admitted, source).to.include(source.replace(/\/$/, ''));
  });
});
