/** Turns what a user types (a path or an s3:// URI) into a store and a key within it. */
import path from 'node:path';
import type { AwsClients } from '../aws.js';
import { LocalStore } from './local.js';
import { S3Store } from './s3.js';
import type { ObjectStore } from './types.js';

export interface Location {
  store: ObjectStore;
  key: string;
}

export function isS3Uri(text: string): boolean {
  return text.startsWith('s3://');
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match) throw new Error(`not an S3 URI: ${uri}`);
  return { bucket: match[1]!, key: match[2]! };
}

/** Creates stores on demand over the process's clients, which are only built if an s3:// URI appears. */
export class Stores {
  constructor(private readonly clients: () => Pick<AwsClients, 's3' | 's3ForBucket'>) {}

  s3(bucket: string): S3Store {
    return S3Store.forBucket(this.clients(), bucket);
  }

  /** An input file: `s3://bucket/key` or a local path. */
  input(text: string): Location {
    if (isS3Uri(text)) {
      const { bucket, key } = parseS3Uri(text);
      if (!key) throw new Error(`input ${text} names a bucket, not an object`);
      return { store: this.s3(bucket), key };
    }
    const absolute = path.resolve(text);
    return { store: new LocalStore(path.dirname(absolute)), key: path.basename(absolute) };
  }

  /** An output directory or S3 prefix; `key(name)` places a file inside it and nowhere else. */
  output(text: string): { store: ObjectStore; key(name: string): string } {
    if (isS3Uri(text)) {
      const { bucket, key } = parseS3Uri(text);
      const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
      return { store: this.s3(bucket), key: (name) => `${prefix}${name}` };
    }
    return { store: new LocalStore(text), key: (name) => name };
  }
}
