/** Where the dataset schemas live (SCHEMA_REGISTRY, `--schema-registry`): a bucket and a key prefix. */
import { bucketNameProblem } from '../config/s3-names.js';

/** Where the documents live: `s3://bucket/prefix/`. */
export interface RegistryLocation {
  bucket: string;
  /** Empty, or ends with `/`. */
  prefix: string;
}

/** Reads `s3://bucket/` or `s3://bucket/prefix/`; throws an Error saying what is wrong. */
export function parseRegistryLocation(text: string): RegistryLocation {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(text.trim());
  if (!match) throw new Error('must look like s3://bucket/prefix/');
  const bucket = match[1]!;
  const problem = bucketNameProblem(bucket);
  if (problem) throw new Error(`bucket name ${JSON.stringify(bucket)} ${problem}`);
  let prefix = match[2] ?? '';
  if (prefix.startsWith('/')) throw new Error('the prefix must not start with "/" (S3 keys have no leading slash)');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  return { bucket, prefix };
}

export function describeRegistryLocation(location: RegistryLocation): string {
  return `s3://${location.bucket}/${location.prefix}`;
}
