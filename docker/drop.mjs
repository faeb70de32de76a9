// Drops local CSV files into the input bucket, as a producer would: `docker compose run --rm drop samples/sales.csv`.
// Runs in the service image (which has the AWS SDK); each file lands at s3://$S3CC_INPUT_BUCKET/$DROP_PREFIX<name>.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const bucket = process.env.S3CC_INPUT_BUCKET || 's3cc-input';
const prefix = process.env.DROP_PREFIX ?? 'incoming/';
const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: drop FILE... (paths relative to the repository, e.g. samples/sales.csv)\n');
  process.exit(2);
}

const s3 = new S3Client({ forcePathStyle: true });
try {
  for (const file of files) {
    const key = `${prefix}${basename(file)}`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(file) }));
    process.stdout.write(`dropped ${file} -> s3://${bucket}/${key}\n`);
  }
} finally {
  s3.destroy();
}
