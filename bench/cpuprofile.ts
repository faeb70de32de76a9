/**
 * Reads V8 .cpuprofile files (`node --cpu-prof`, one per thread) and says where the busy time went:
 * self time by function and by module (package, node internals, our src/ folder), and inclusive
 * time of chosen functions. Used by `run.js --profile` to diagnose the service.
 *   node dist/bench/cpuprofile.js bench/data/profiles/<run>
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ThreadSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  byModule: [string, number][];
  byFunction: [string, number][];
  /** Inclusive busy time under frames whose name matches, for the questions the bench asks. */
  inclusive: Record<string, number>;
}

/** Time the thread was not running JS or native work for it: waiting, not costing CPU. */
const IDLE = new Set(['(idle)', '(program)']);

function moduleOf(url: string, functionName: string): string {
  if (functionName.startsWith('(')) return functionName;
  if (!url) return '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const parts = url.slice(nm + 14).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 6).split('/').slice(0, 3).join('/').replace(/\.js$/, '');
  return url;
}

export function summarizeProfile(profile: Profile, file: string, inclusiveNames: Record<string, RegExp>): ThreadSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // Each sample counts as one sampling interval. Weighting samples by the gap to the next one would
  // charge a thread descheduled on a busy machine (it is not sampled while it waits for a core) to
  // whatever it ran last: postMessage and connect() look costly only because they wake another thread.
  const sorted = profile.timeDeltas.slice(1).sort((a, b) => a - b);
  const interval = sorted[Math.floor(sorted.length / 2)] ?? 1000;
  const selfUs = new Map<number, number>();
  for (const sample of profile.samples) selfUs.set(sample, (selfUs.get(sample) ?? 0) + interval);
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive: Record<string, number> = Object.fromEntries(Object.keys(inclusiveNames).map((name) => [name, 0]));
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (IDLE.has(functionName) || isWaiting(node)) continue;
    busyUs += us;
    const module = moduleOf(url, functionName);
    byModule.set(module, (byModule.get(module) ?? 0) + us);
    const fn = `${functionName || '(anonymous)'} ${module}:${lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    // Inclusive: walk up once per sampled node, counting each question at most once.
    const hit = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      for (const [name, pattern] of Object.entries(inclusiveNames)) {
        if (!hit.has(name) && pattern.test(`${frame.functionName} ${frame.url}`)) {
          hit.add(name);
          inclusive[name]! += us;
        }
      }
    }
  }
  const ms = (entries: Map<string, number>) =>
    [...entries].map(([name, us]) => [name, us / 1000] as [string, number]).sort((a, b) => b[1] - a[1]);
  return {
    file,
    wallMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busyUs / 1000,
    byModule: ms(byModule),
    byFunction: ms(byFunction),
    inclusive: Object.fromEntries(Object.entries(inclusive).map(([name, us]) => [name, us / 1000])),
  };
}

/** A blocked Atomics.wait (piscina's idle worker) is sampled in its JS caller but costs no CPU. */
function isWaiting(node: ProfileNode): boolean {
  return node.callFrame.functionName === 'atomicsWaitLoop' || (node.callFrame.functionName === 'wait' && node.callFrame.url === '');
}

export async function summarizeDir(dir: string, inclusiveNames: Record<string, RegExp>): Promise<ThreadSummary[]> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile')).sort();
  const out: ThreadSummary[] = [];
  for (const name of files) {
    const profile = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Profile;
    out.push(summarizeProfile(profile, name, inclusiveNames));
  }
  return out;
}

/** The questions asked of a `serve` profile: inclusive busy time under these frames. */
export const SERVICE_QUESTIONS: Record<string, RegExp> = {
  'AWS SDK (send → response)': /@aws-sdk|@smithy/,
  'sqs-consumer': /sqs-consumer/,
  'pino logging': /\/pino\/|pino-std|sonic-boom/,
  'piscina (thread hand-off)': /\/piscina\//,
  'structured clone (postMessage)': /postMessage|receiveMessageOnPort/,
  'CSV read (src/csv)': /dist\/src\/csv\//,
  'Parquet (plugin + hyparquet-writer)': /formats\/parquet|hyparquet/,
  'Avro (plugin)': /formats\/avro/,
  'zlib / deflate': /node:zlib|deflate/i,
  'convertObject (whole engine)': /^convertObject /,
  'garbage collector': /^\(garbage collector\)/,
};

function print(summaries: ThreadSummary[], top = 25): void {
  for (const s of summaries) {
    console.log(`\n== ${s.file}: busy ${s.busyMs.toFixed(0)} ms of ${s.wallMs.toFixed(0)} ms wall`);
    console.log('-- by module (self ms)');
    for (const [name, ms] of s.byModule.slice(0, 15)) console.log(`${ms.toFixed(0).padStart(8)}  ${(100 * ms / s.busyMs).toFixed(1).padStart(5)}%  ${name}`);
    console.log('-- by function (self ms)');
    for (const [name, ms] of s.byFunction.slice(0, top)) console.log(`${ms.toFixed(0).padStart(8)}  ${(100 * ms / s.busyMs).toFixed(1).padStart(5)}%  ${name}`);
    console.log('-- inclusive');
    for (const [name, ms] of Object.entries(s.inclusive)) console.log(`${ms.toFixed(0).padStart(8)}  ${(100 * ms / s.busyMs).toFixed(1).padStart(5)}%  ${name}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  print(await summarizeDir(process.argv[2]!, SERVICE_QUESTIONS), Number(process.argv[3] ?? 25));
}
