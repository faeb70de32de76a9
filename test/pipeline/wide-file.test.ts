/**
 * A wide file costs what its bytes cost: a CSV of 150 columns × 60,000 rows (74 MB) converts with
 * the 384 MB heap the task definition gives a worker, because batches and row groups are cut by
 * their weight in bytes (ROW_GROUP_BYTES), not only by ROW_GROUP_SIZE rows.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runPython } from '../support/python.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const COLUMNS = 150;
const ROWS = 60_000;

/** Cell (r, c): int64, double, a repeated code, a date, or free text, by column. */
function cell(r: number, c: number): string {
  switch (c % 5) {
    case 0:
      return String(r * COLUMNS + c);
    case 1:
      return (r * 0.25 + c).toFixed(2);
    case 2:
      return `v${(r + c) % 997}`;
    case 3:
      return `2024-0${1 + (r % 9)}-1${c % 10}`;
    default:
      return `text ${r}`;
  }
}

async function writeWideCsv(file: string): Promise<void> {
  const out = createWriteStream(file);
  out.write(`${Array.from({ length: COLUMNS }, (_, c) => `col_${c}`).join(',')}\n`);
  for (let r = 0; r < ROWS; r++) {
    const line = `${Array.from({ length: COLUMNS }, (_, c) => cell(r, c)).join(',')}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
}

describe('a wide file: 150 columns × 60,000 rows with a 384 MB heap', function () {
  this.timeout(300_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3cc-wide-'));
    await writeWideCsv(path.join(dir, 'wide.csv'));
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('convert writes both formats, in row groups cut by bytes, every cell in place', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'convert', path.join(dir, 'wide.csv'), '--out', path.join(dir, 'out'), '--json'], {
      env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=384' },
      maxBuffer: 1 << 24,
    });
    const [entry] = JSON.parse(stdout) as { ok: boolean; summary: { rows: number; bytesIn: number } }[];
    expect(entry!.ok).to.equal(true);
    expect(entry!.summary.rows).to.equal(ROWS);
    expect(entry!.summary.bytesIn).to.be.above(70_000_000);
    const report = await runPython(
      `
import sys, pyarrow.parquet as pq, fastavro
f = pq.ParquetFile(sys.argv[1])
groups = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
t = f.read(columns=['col_0', 'col_3', 'col_149'])
with open(sys.argv[2], 'rb') as a:
    last = None
    n = 0
    for record in fastavro.reader(a):
        n += 1
        last = record
print(f.metadata.num_columns, sum(groups), len(groups), max(groups) < 50000,
      t.column('col_0')[59999].as_py(), str(t.column('col_3')[5].as_py()), t.column('col_149')[0].as_py(),
      n, last['col_0'], last['col_149'], sep='|')
`,
      [path.join(dir, 'out', 'wide.parquet'), path.join(dir, 'out', 'wide.avro')],
    );
    const [columns, rows, groups, ...rest] = report.trim().split('|');
    expect([columns, rows, ...rest]).to.deep.equal(['150', '60000', 'True', String(59_999 * 150), '2024-06-13', 'text 0', '60000', String(59_999 * 150), 'text 59999']);
    // A 50,000-row group of this file would weigh about 60 MiB of typed values: it is cut at 16 MiB.
    expect(Number(groups)).to.be.at.least(4);
  });
});
