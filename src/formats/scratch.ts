/**
 * Working buffers that format writers borrow and give back. A writer needs a megabyte of scratch
 * space for a large file, but a service converting thousands of 20 KB files a minute would allocate
 * (and zero) that megabyte for each one: V8 counts it as external memory and answers with a full
 * garbage collection every few files. Each thread keeps a few spare buffers of each size instead.
 */

const SPARES_PER_SIZE = 8;
const spares = new Map<number, ArrayBuffer[]>();

/** A buffer of exactly `bytes`, reused if one was given back; its contents are not cleared. */
export function borrowScratch(bytes: number): ArrayBuffer {
  return spares.get(bytes)?.pop() ?? new ArrayBuffer(bytes);
}

/** Gives a buffer back once nothing refers to it any more. Buffers beyond a few per size are left to the GC. */
export function returnScratch(buffer: ArrayBuffer): void {
  let list = spares.get(buffer.byteLength);
  if (!list) spares.set(buffer.byteLength, (list = []));
  if (list.length < SPARES_PER_SIZE) list.push(buffer);
}
