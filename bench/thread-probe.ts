/**
 * Bench-only preload (`node --import dist/bench/thread-probe.js …`): tells the bench, on stderr,
 * the Linux thread id of the main thread and of every worker thread, so it can read each one's
 * CPU time from /proc/<pid>/task/<tid>/stat. Workers inherit the flag, so piscina's threads report too.
 */
import { readFileSync } from 'node:fs';
import { isMainThread, threadId } from 'node:worker_threads';

const tid = Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]);
process.stderr.write(`bench-thread ${JSON.stringify({ tid, main: isMainThread, threadId })}\n`);
