/** What S3 accepts as a bucket name and as an object URI, checked before any request is made. */

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Why `name` cannot be a general-purpose bucket name, or undefined when it can. Follows the
 * published naming rules; access-point aliases (`…-s3alias`) and directory buckets (`…--x-s3`)
 * are accepted because S3 takes them wherever a bucket name goes.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long';
  if (!/^[a-z0-9.-]+$/.test(name)) return 'may contain only lower-case letters, digits, dots and hyphens';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent dots';
  if (IPV4.test(name)) return 'must not look like an IP address';
  for (const prefix of ['xn--', 'sthree-', 'amzn-s3-demo-']) {
    if (name.startsWith(prefix)) return `must not begin with the reserved prefix "${prefix}"`;
  }
  return undefined;
}

/** Why `uri` does not name one S3 object (`s3://bucket/key`), or undefined when it does. */
export function s3ObjectUriProblem(uri: string): string | undefined {
  const match = /^s3:\/\/([^/]*)\/(.*)$/.exec(uri);
  if (!match) return 'must look like s3://bucket/key';
  const bucketProblem = bucketNameProblem(match[1]);
  if (bucketProblem) return `bucket name ${JSON.stringify(match[1])} ${bucketProblem}`;
  if (match[2] === '' || match[2].endsWith('/')) return 'must name an object, not a bucket or folder';
  return undefined;
}
