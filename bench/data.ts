/**
 * Generates the bench's CSV inputs, deterministically, into bench/data/ (git-ignored) and keeps
 * them between runs: eight mixed columns like the field notes' (int64, timestamp, date, string,
 * double, int, boolean, and a free-text column with quotes, commas and nulls).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { DATA_DIR } from './support.js';
import { seededRandom } from '../test/support/random.js';

export const HEADER = 'id,created_at,day,customer,amount,quantity,active,comment\n';

const COMMENTS = ['', '', 'ok', 'late delivery', '"call back, after 5pm"', 'gift', '"said ""fine"""', 'n/a', 'returned'];
const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** Rows from `firstId` on, about 85 bytes each. */
function rows(next: () => number, firstId: number, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const month = 1 + Math.floor(next() * 12);
    const day = 1 + Math.floor(next() * 28);
    const date = `2025-${pad2(month)}-${pad2(day)}`;
    const ms = String(Math.floor(next() * 1000)).padStart(3, '0');
    const time = `${pad2(Math.floor(next() * 24))}:${pad2(Math.floor(next() * 60))}:${pad2(Math.floor(next() * 60))}.${ms}Z`;
    const amount = (next() * 5000).toFixed(2);
    const quantity = Math.floor(next() * 200);
    const active = next() < 0.5 ? 'true' : 'false';
    const comment = COMMENTS[Math.floor(next() * COMMENTS.length)];
    out.push(`${10_000_000_000 + firstId + i},${date}T${time},${date},cust_${Math.floor(next() * 100_000)},${amount},${quantity},${active},${comment}\n`);
  }
  return out.join('');
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** A CSV of about `bytes` bytes at bench/data/<name>; generated once, then reused. */
export async function bigCsv(name: string, bytes: number, log: (text: string) => void): Promise<string> {
  const file = path.join(DATA_DIR, name);
  if (await exists(file)) return file;
  await mkdir(DATA_DIR, { recursive: true });
  log(`generating ${name} (${Math.round(bytes / 1e6)} MB, once; cached in bench/data/)`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const next = seededRandom(42);
  let written = 0;
  let id = 0;
  out.write(HEADER);
  while (written < bytes) {
    const text = rows(next, id, 10_000);
    id += 10_000;
    written += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
  await rename(partial, file);
  return file;
}

/** `count` CSVs of about `bytes` each in bench/data/<dir>/, named f00000.csv…; reused when present. */
export async function smallCsvs(dir: string, count: number, bytes: number): Promise<string[]> {
  const folder = path.join(DATA_DIR, dir);
  await mkdir(folder, { recursive: true });
  const present = new Set(await readdir(folder));
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f${String(i).padStart(5, '0')}.csv`;
    files.push(path.join(folder, name));
    if (present.has(name)) continue;
    const next = seededRandom(1000 + i);
    const perRow = 85;
    await writeFile(path.join(folder, name), HEADER + rows(next, i * 1000, Math.round(bytes / perRow)));
  }
  return files;
}
