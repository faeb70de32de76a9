/** Reopens a store from its descriptor, for code running on a thread that cannot share the original. */
import { LocalStore } from './local.js';
import type { ObjectStore, StoreDescriptor } from './types.js';

/** The store and how to release what opening it took (an S3 client's sockets). */
export async function openStore(descriptor: StoreDescriptor): Promise<{ store: ObjectStore; close(): void }> {
  if (descriptor.kind === 'local') return { store: new LocalStore(descriptor.root), close: () => undefined };
  // Loaded only when needed: the AWS SDK takes a noticeable time to import on a fresh thread.
  const [{ createAwsClients }, { S3Store }] = await Promise.all([import('../aws.js'), import('./s3.js')]);
  // One object is written through this client, so a small socket pool is plenty.
  const clients = createAwsClients({ endpoint: descriptor.endpoint, region: descriptor.region, concurrency: 1 });
  return { store: S3Store.forBucket(clients, descriptor.bucket), close: () => clients.destroy() };
}
