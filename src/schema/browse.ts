/** Finds every dataset's schema document under the registry prefix, for `schema show`. */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { DOCUMENT_NAME, type SchemaDocument } from './document.js';
import type { RegistryLocation } from './location.js';
import { SchemaDocumentStore } from './store.js';

/** One dataset as found: its document, or why it cannot be read. */
export interface FoundDataset {
  dataset: string;
  uri: string;
  document?: SchemaDocument;
  problem?: string;
}

/** Every document under the prefix, ordered by dataset name. */
export async function listDatasets(client: S3Client, location: RegistryLocation): Promise<FoundDataset[]> {
  const store = new SchemaDocumentStore(client, location);
  const datasets: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: location.bucket, Prefix: location.prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const dataset = datasetOfDocumentKey(object.Key ?? '', location.prefix);
      if (dataset !== undefined) datasets.push(dataset);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  datasets.sort();
  return Promise.all(datasets.map((dataset) => readDataset(store, dataset)));
}

/** One dataset's document; `document` is absent (without a problem) when none is registered. */
export async function readDataset(store: SchemaDocumentStore, dataset: string): Promise<FoundDataset> {
  const uri = store.uri(dataset);
  try {
    const stored = await store.read(dataset);
    return stored ? { dataset, uri, document: stored.document } : { dataset, uri };
  } catch (error) {
    return { dataset, uri, problem: (error as Error).message };
  }
}

/** The dataset a key under the prefix is the document of, or undefined when it is not one. */
export function datasetOfDocumentKey(key: string, prefix: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  if (rest === DOCUMENT_NAME) return '';
  return rest.endsWith(`/${DOCUMENT_NAME}`) ? rest.slice(0, -DOCUMENT_NAME.length - 1) : undefined;
}
