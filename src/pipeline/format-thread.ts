/**
 * Runs on a worker thread (see parallel.ts): writes one output format from the spool file the
 * calling thread filled, then publishes or discards it as the calling thread decides.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toTypedBatch } from '../csv/values.js';
import { openStore } from '../storage/open.js';
import type { PendingObject } from '../storage/types.js';
import { threadFormatRegistry, toThreadError, type FormatJob, type ThreadCommand, type ThreadReport } from './parallel.js';
import { readSpoolFile } from './spool.js';

const port = parentPort!;
const job = workerData as FormatJob;
const aborting = new AbortController();
let decided: (command: ThreadCommand) => void;
const decision = new Promise<ThreadCommand>((resolve) => (decided = resolve));

port.on('message', (command: ThreadCommand) => {
  if (command.kind === 'abort') aborting.abort();
  decided(command);
});

const report = (message: ThreadReport) => port.postMessage(message);

async function writeOutput(): Promise<void> {
  let close = () => undefined as void;
  let sink: PendingObject | undefined;
  try {
    const opened = await openStore(job.store);
    close = opened.close;
    const store = opened.store;
    const plugin = threadFormatRegistry().get(job.format);
    sink = await store.put(job.key, { contentType: plugin.contentType, metadata: job.metadata });
    const writer = plugin.createWriter(job.schema, sink, job.formatOptions);
    const types = job.schema.columns.map((column) => column.type);
    const names = job.schema.columns.map((column) => column.name);
    for await (const chunk of readSpoolFile(job.spoolFile)) {
      aborting.signal.throwIfAborted();
      await writer.write(toTypedBatch(chunk, types, names));
    }
    await writer.finish();
    aborting.signal.throwIfAborted();
    report({ kind: 'written' });
    if ((await decision).kind === 'abort') throw aborting.signal.reason;
    report({ kind: 'committed', bytes: await sink.commit() });
  } catch (error) {
    await sink?.abort().catch(() => undefined);
    report(aborting.signal.aborted ? { kind: 'aborted' } : { kind: 'failed', error: toThreadError(error) });
  } finally {
    close();
    // Nothing more to hear: let the thread end on its own.
    port.removeAllListeners('message');
    port.unref();
  }
}

await writeOutput();
