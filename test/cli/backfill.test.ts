import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sharedEmulator, uniqueName } from '../support/emulator.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs the CLI with exactly `env` (plus PATH): these cases stop before any AWS call. */
function backfill(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'backfill', ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/111122223333/s3cc-events';

describe('the backfill command: settings and options', function () {
  this.timeout(10_000);

  it('needs OUTPUT_BUCKET, named as serve names it', async () => {
    const { code, stderr } = await backfill(['--bucket', 'landing', '--queue', QUEUE], {});
    expect(code).to.equal(1);
    expect(stderr).to.include('missing setting OUTPUT_BUCKET: must be set');
  });

  it('needs QUEUE_URL unless --queue is given', async () => {
    const { code, stderr } = await backfill(['--bucket', 'landing'], { OUTPUT_BUCKET: 'converted' });
    expect(code).to.equal(1);
    expect(stderr).to.include('missing setting QUEUE_URL: must be set');
  });

  it('validates the output settings as serve does, all problems at once', async () => {
    const { code, stderr } = await backfill(['--bucket', 'landing', '--dry-run'], { OUTPUT_BUCKET: 'Bad_Bucket', OUTPUT_KEY_TEMPLATE: '{format}.{ext}' });
    expect(code).to.equal(1);
    expect(stderr).to.include('invalid setting OUTPUT_BUCKET="Bad_Bucket"');
    expect(stderr).to.include('invalid setting OUTPUT_KEY_TEMPLATE="{format}.{ext}": must contain {stem}');
  });

  it('names a format the registry does not know', async () => {
    const { code, stderr } = await backfill(['--bucket', 'landing', '--dry-run'], { OUTPUT_BUCKET: 'converted', FORMATS: 'parquet,orc' });
    expect(code).to.equal(1);
    expect(stderr).to.match(/invalid setting FORMATS: unknown format "orc"/);
  });

  it('checks a QUEUE_URL that is set even in a dry run', async () => {
    const { code, stderr } = await backfill(['--bucket', 'landing', '--dry-run'], { OUTPUT_BUCKET: 'converted', QUEUE_URL: 'not a url' });
    expect(code).to.equal(1);
    expect(stderr).to.include('invalid setting QUEUE_URL="not a url"');
  });

  it('ignores the settings only serve reads, even when they are wrong', async function () {
    this.timeout(30_000);
    // Past the settings, the run reaches the emulator and stops on the bucket that is not there.
    const emulator = await sharedEmulator();
    const bucket = uniqueName('bf-cli-missing');
    const { code, stderr } = await backfill(['--bucket', bucket, '--dry-run'], {
      OUTPUT_BUCKET: 'converted',
      CONCURRENCY: 'lots',
      HEARTBEAT_INTERVAL: '9999',
      AWS_ENDPOINT_URL: emulator.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    expect(code).to.equal(1);
    expect(stderr).to.equal(`error: bucket ${bucket} does not exist (NoSuchBucket)\n`);
  });

  for (const [args, message] of [
    [['--bucket', 'No'], 'not a valid S3 bucket name'],
    [['--bucket', 'landing', '--modified-since', 'last tuesday'], 'ISO 8601'],
    [['--bucket', 'landing', '--rate', '0'], 'expected a number > 0'],
    [['--bucket', 'landing', '--queue', 'sqs://x'], 'http:// or https://'],
  ] as const) {
    it(`refuses ${args.slice(-2).join(' ')} with why`, async () => {
      const { code, stderr } = await backfill([...args], { OUTPUT_BUCKET: 'converted', QUEUE_URL: QUEUE });
      expect(code).to.equal(1);
      expect(stderr).to.include(message);
    });
  }
});
