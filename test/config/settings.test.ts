import os from 'node:os';
import { expect } from 'chai';
import { loadSettings, SETTING_DEFINITIONS, SettingsError, type Settings } from '../../src/config/settings.js';
import { parseSchemaMapJson } from '../../src/config/schema-map.js';
import { renderKeyTemplate } from '../../src/config/key-template.js';

const REQUIRED = { QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/incoming', OUTPUT_BUCKET: 'converted-data' };

function load(env: Record<string, string>): Settings {
  return loadSettings({ ...REQUIRED, ...env });
}

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadSettings(env);
  } catch (error) {
    expect(error).to.be.instanceOf(SettingsError);
    return (error as SettingsError).message.split('\n');
  }
  expect.fail('expected a SettingsError');
}

function problem(env: Record<string, string>): string {
  const lines = problemsOf({ ...REQUIRED, ...env });
  expect(lines).to.have.length(1);
  return lines[0];
}

describe('settings', () => {
  describe('defaults', () => {
    it('needs only the queue and the output bucket', () => {
      const s = loadSettings(REQUIRED);
      expect(s).to.deep.include({
        queueUrl: REQUIRED.QUEUE_URL,
        outputBucket: 'converted-data',
        dlqUrl: undefined,
        outputPrefix: '',
        outputKeyTemplate: '{prefix}{format}/{stem}.{ext}',
        formats: ['parquet', 'avro'],
        formatPlugins: [],
        concurrency: 16,
        batchSize: 10,
        visibilityTimeout: 120,
        heartbeatInterval: 30,
        waitTimeSeconds: 20,
        maxObjectBytes: 10 * 2 ** 30,
        workerThreads: os.availableParallelism(),
        backoffBaseSeconds: 10,
        backoffMaxSeconds: 900,
        schemaMap: undefined,
        schemaRegistry: undefined,
        schemaEvolution: 'add-columns',
        schemaDataset: { kind: 'folder' },
        metricsEnabled: true,
        metricsNamespace: 'S3CsvConverter',
        metricsFlushSeconds: 60,
        metricsServiceName: 's3-csv-converter',
        healthPort: 8080,
        healthMaxPollAgeSeconds: 60,
        shutdownGraceSeconds: 25,
        logLevel: 'info',
        logPretty: Boolean(process.stdout.isTTY),
        awsEndpointUrl: undefined,
        awsRegion: 'us-east-1',
        csvParser: 'papaparse',
        csvDelimiter: undefined,
        csvEncoding: 'utf-8',
        rowGroupSize: 50_000,
        rowGroupBytes: 16 * 2 ** 20,
        tmpDir: os.tmpdir(),
      });
    });

    it('treats an empty value as unset and ignores variables it does not know', () => {
      const s = load({ CONCURRENCY: '', DLQ_URL: '', PATH: '/usr/bin', SOMETHING_ELSE: 'x' });
      expect(s.concurrency).to.equal(16);
      expect(s.dlqUrl).to.equal(undefined);
      expect(s).to.not.have.property('PATH');
    });
  });

  describe('errors', () => {
    it('names the setting, its value and the rule', () => {
      expect(problem({ BATCH_SIZE: '12' })).to.equal('invalid setting BATCH_SIZE="12": must be an integer from 1 to 10');
    });

    it('reports every problem at once, one line each, in the documented order', () => {
      const lines = problemsOf({ QUEUE_URL: 'not a url', BATCH_SIZE: '0', LOG_LEVEL: 'loud', CONCURRENCY: 'many' });
      expect(lines).to.deep.equal([
        'invalid setting QUEUE_URL="not a url": must be an http:// or https:// URL',
        'missing setting OUTPUT_BUCKET: must be set',
        'invalid setting CONCURRENCY="many": must be an integer from 1 to 256',
        'invalid setting BATCH_SIZE="0": must be an integer from 1 to 10',
        'invalid setting LOG_LEVEL="loud": must be one of fatal, error, warn, info, debug, trace, silent',
      ]);
    });

    it('keeps the problems as data too', () => {
      try {
        loadSettings({ OUTPUT_BUCKET: 'b-1', WAIT_TIME_SECONDS: '21' });
        expect.fail('expected a SettingsError');
      } catch (error) {
        expect((error as SettingsError).problems).to.deep.equal([
          { setting: 'QUEUE_URL', value: undefined, reason: 'must be set' },
          { setting: 'WAIT_TIME_SECONDS', value: '21', reason: 'must be an integer from 0 to 20' },
        ]);
      }
    });
  });

  describe('integers', () => {
    for (const bad of ['0', '257', '1.5', '-1', '1e2', '0x10', 'sixteen']) {
      it(`rejects CONCURRENCY=${bad}`, () => {
        expect(problem({ CONCURRENCY: bad })).to.equal(`invalid setting CONCURRENCY="${bad}": must be an integer from 1 to 256`);
      });
    }

    it('accepts the bounds and surrounding spaces', () => {
      expect(load({ CONCURRENCY: ' 256 ', BATCH_SIZE: '1', HEALTH_PORT: '0', ROW_GROUP_SIZE: '1000' })).to.deep.include({
        concurrency: 256,
        batchSize: 1,
        healthPort: 0,
        rowGroupSize: 1000,
      });
    });

    it('checks the documented ranges', () => {
      expect(problem({ VISIBILITY_TIMEOUT: '43201' })).to.match(/VISIBILITY_TIMEOUT="43201": must be an integer from 10 to 43200/);
      expect(problem({ BACKOFF_MAX_SECONDS: '43201' })).to.match(/from 1 to 43200/);
      expect(problem({ METRICS_FLUSH_SECONDS: '3601' })).to.match(/from 1 to 3600/);
      expect(problem({ HEALTH_PORT: '65536' })).to.match(/from 0 to 65535/);
      expect(problem({ ROW_GROUP_SIZE: '999' })).to.match(/from 1000 to 1000000/);
    });
  });

  describe('cross-field rules', () => {
    it('wants HEARTBEAT_INTERVAL below VISIBILITY_TIMEOUT, naming both', () => {
      expect(problem({ VISIBILITY_TIMEOUT: '30', HEARTBEAT_INTERVAL: '30' })).to.equal(
        'invalid setting HEARTBEAT_INTERVAL="30": must be below VISIBILITY_TIMEOUT (30)',
      );
      expect(problem({ VISIBILITY_TIMEOUT: '20' })).to.equal(
        'invalid setting HEARTBEAT_INTERVAL (unset, default "30"): must be below VISIBILITY_TIMEOUT (20)',
      );
      expect(load({ VISIBILITY_TIMEOUT: '31', HEARTBEAT_INTERVAL: '30' }).heartbeatInterval).to.equal(30);
    });

    it('reports cross-field problems alongside unrelated ones', () => {
      const lines = problemsOf({ ...REQUIRED, BATCH_SIZE: '99', VISIBILITY_TIMEOUT: '20' });
      expect(lines).to.have.length(2);
      expect(lines[1]).to.match(/^invalid setting HEARTBEAT_INTERVAL .*VISIBILITY_TIMEOUT/);
    });

    it('skips a cross-field rule when one of its settings is itself invalid', () => {
      expect(problemsOf({ ...REQUIRED, VISIBILITY_TIMEOUT: 'x' })).to.have.length(1);
    });

    it('wants BACKOFF_BASE_SECONDS at most BACKOFF_MAX_SECONDS', () => {
      expect(problem({ BACKOFF_BASE_SECONDS: '60', BACKOFF_MAX_SECONDS: '30' })).to.equal(
        'invalid setting BACKOFF_BASE_SECONDS="60": must not exceed BACKOFF_MAX_SECONDS (30)',
      );
    });

    it('wants the health poll age above the long-poll wait, unless health is off', () => {
      expect(problem({ HEALTH_MAX_POLL_AGE_SECONDS: '20' })).to.equal(
        'invalid setting HEALTH_MAX_POLL_AGE_SECONDS="20": must be greater than WAIT_TIME_SECONDS (20)',
      );
      expect(load({ HEALTH_MAX_POLL_AGE_SECONDS: '20', HEALTH_PORT: '0' }).healthMaxPollAgeSeconds).to.equal(20);
      expect(load({ HEALTH_MAX_POLL_AGE_SECONDS: '20', WAIT_TIME_SECONDS: '5' }).healthMaxPollAgeSeconds).to.equal(20);
    });
  });

  describe('booleans', () => {
    const words: [string, boolean][] = [
      ['true', true],
      ['TRUE', true],
      ['1', true],
      ['yes', true],
      ['false', false],
      ['0', false],
      ['No', false],
    ];
    for (const [word, value] of words) {
      it(`reads ${word} as ${value}`, () => {
        expect(load({ METRICS_ENABLED: word, LOG_PRETTY: word })).to.deep.include({ metricsEnabled: value, logPretty: value });
      });
    }

    it('rejects anything else', () => {
      expect(problem({ METRICS_ENABLED: 'on' })).to.equal('invalid setting METRICS_ENABLED="on": must be true/false, 1/0 or yes/no');
    });
  });

  describe('MAX_OBJECT_BYTES', () => {
    const sizes: [string, number][] = [
      ['1048576', 1_048_576],
      ['512MiB', 512 * 2 ** 20],
      ['2GiB', 2 * 2 ** 30],
      ['100MB', 100_000_000],
      ['1.5 KiB', 1536],
      ['2gib', 2 * 2 ** 30],
      ['1TiB', 2 ** 40],
    ];
    for (const [text, bytes] of sizes) {
      it(`reads ${text} as ${bytes} bytes`, () => {
        expect(load({ MAX_OBJECT_BYTES: text }).maxObjectBytes).to.equal(bytes);
      });
    }

    for (const bad of ['0', '-5', '10XB', 'GiB', '0.1B', '1e6']) {
      it(`rejects ${bad}`, () => {
        expect(problem({ MAX_OBJECT_BYTES: bad })).to.match(/^invalid setting MAX_OBJECT_BYTES=.*: must be a positive size in bytes/);
      });
    }
  });

  describe('OUTPUT_KEY_TEMPLATE', () => {
    it('accepts templates whose outputs cannot collide', () => {
      for (const template of ['{prefix}{format}/{stem}.{ext}', '{prefix}{stem}.{ext}', 'out/{bucket}/{stem}-{format}']) {
        expect(load({ OUTPUT_KEY_TEMPLATE: template }).outputKeyTemplate).to.equal(template);
      }
    });

    it('rejects an unknown placeholder', () => {
      expect(problem({ OUTPUT_KEY_TEMPLATE: '{prefix}{date}/{stem}.{ext}' })).to.equal(
        'invalid setting OUTPUT_KEY_TEMPLATE="{prefix}{date}/{stem}.{ext}": unknown placeholder {date} (known: {prefix} {format} {stem} {ext} {bucket})',
      );
    });

    it('wants {stem}, and {ext} or {format}', () => {
      expect(problem({ OUTPUT_KEY_TEMPLATE: '{prefix}{format}/data.{ext}' })).to.match(/must contain \{stem\}$/);
      expect(problem({ OUTPUT_KEY_TEMPLATE: '{prefix}{stem}.out' })).to.match(/must contain \{ext\} or \{format\}$/);
    });

    it('rejects unmatched braces and a leading slash', () => {
      expect(problem({ OUTPUT_KEY_TEMPLATE: '{prefix}{stem.{ext}' })).to.match(/unmatched/);
      expect(problem({ OUTPUT_KEY_TEMPLATE: '/{stem}.{ext}' })).to.match(/must not start with "\/"/);
    });

    it('renders with the same placeholders', () => {
      const key = renderKeyTemplate('{prefix}{format}/{stem}.{ext}', {
        prefix: 'converted/',
        format: 'parquet',
        stem: 'in/sales 2026',
        ext: 'parquet',
        bucket: 'src',
      });
      expect(key).to.equal('converted/parquet/in/sales 2026.parquet');
    });
  });

  describe('FORMATS', () => {
    it('lower-cases, trims and de-duplicates', () => {
      expect(load({ FORMATS: ' Parquet , AVRO,parquet,orc-v2' }).formats).to.deep.equal(['parquet', 'avro', 'orc-v2']);
    });

    for (const bad of [',', 'parquet,,avro', 'parquet;avro', 'par quet']) {
      it(`rejects ${JSON.stringify(bad)}`, () => {
        expect(problem({ FORMATS: bad })).to.match(/^invalid setting FORMATS=.*: must be a comma-separated list of format names/);
      });
    }
  });

  describe('S3 and URLs', () => {
    for (const bad of ['ab', 'My-Bucket', 'bucket_name', '-bucket', 'bucket-', 'a..b', '192.168.1.1', 'xn--bucket', 'x'.repeat(64)]) {
      it(`rejects the bucket name ${JSON.stringify(bad)}`, () => {
        expect(problem({ OUTPUT_BUCKET: bad })).to.match(/^invalid setting OUTPUT_BUCKET=.*: is not a valid S3 bucket name: it /);
      });
    }

    it('accepts dotted names and access-point aliases', () => {
      expect(load({ OUTPUT_BUCKET: 'data.example.com' }).outputBucket).to.equal('data.example.com');
      expect(load({ OUTPUT_BUCKET: 'my-ap-abc123-s3alias' }).outputBucket).to.equal('my-ap-abc123-s3alias');
    });

    it('wants http(s) URLs for queues and the endpoint', () => {
      expect(problem({ DLQ_URL: 'ftp://example.com/q' })).to.equal('invalid setting DLQ_URL="ftp://example.com/q": must be an http:// or https:// URL');
      expect(load({ AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }).awsEndpointUrl).to.equal('http://127.0.0.1:5000');
    });

    it('rejects a prefix with a leading slash', () => {
      expect(problem({ OUTPUT_PREFIX: '/out/' })).to.match(/OUTPUT_PREFIX="\/out\/": must not start with "\/"/);
    });

    it('checks the region and namespace shapes', () => {
      expect(load({ AWS_REGION: 'eu-central-2' }).awsRegion).to.equal('eu-central-2');
      expect(problem({ AWS_REGION: 'Frankfurt' })).to.match(/must be an AWS region name/);
      expect(problem({ METRICS_NAMESPACE: 'AWS/S3' })).to.match(/reserved/);
      expect(problem({ METRICS_NAMESPACE: 'bad{name}' })).to.match(/must be 1 to 255 characters/);
    });
  });

  describe('engine options', () => {
    it('reads the delimiter as a character, a word or an escape', () => {
      expect(load({ CSV_DELIMITER: 'tab' }).csvDelimiter).to.equal('\t');
      expect(load({ CSV_DELIMITER: 'TAB' }).csvDelimiter).to.equal('\t');
      expect(load({ CSV_DELIMITER: '\t' }).csvDelimiter).to.equal('\t');
      expect(load({ CSV_DELIMITER: '\\t' }).csvDelimiter).to.equal('\t');
      expect(load({ CSV_DELIMITER: ';' }).csvDelimiter).to.equal(';');
      expect(load({ CSV_DELIMITER: '|' }).csvDelimiter).to.equal('|');
      expect(problem({ CSV_DELIMITER: ':' })).to.equal('invalid setting CSV_DELIMITER=":": must be one of , ; | tab');
    });

    it('reads choices case-insensitively', () => {
      expect(load({ CSV_PARSER: 'Fast-CSV', CSV_ENCODING: 'UTF8' })).to.deep.include({ csvParser: 'fast-csv', csvEncoding: 'utf-8' });
      expect(problem({ CSV_PARSER: 'udsv' })).to.equal('invalid setting CSV_PARSER="udsv": must be one of papaparse, fast-csv');
    });

    it('reads ROW_GROUP_BYTES as a size of at least 1 MiB, and FORMAT_PLUGINS as a list of modules', () => {
      expect(load({ ROW_GROUP_BYTES: '64MiB' }).rowGroupBytes).to.equal(64 * 2 ** 20);
      expect(problem({ ROW_GROUP_BYTES: '100KiB' })).to.equal('invalid setting ROW_GROUP_BYTES="100KiB": must be at least 1MiB');
      expect(load({ FORMAT_PLUGINS: ' ./a.js, @acme/orc-format ,' }).formatPlugins).to.deep.equal(['./a.js', '@acme/orc-format']);
    });

    it('wants an absolute TMP_DIR', () => {
      expect(load({ TMP_DIR: '/var/tmp' }).tmpDir).to.equal('/var/tmp');
      expect(problem({ TMP_DIR: 'tmp' })).to.match(/must be an absolute path/);
    });
  });

  describe('SCHEMA_MAP', () => {
    it('takes an inline JSON map of prefix to schema file', () => {
      const map = { 'sales/': 's3://schemas-bucket/sales.json', 'hr/': '/etc/schemas/hr.json' };
      expect(load({ SCHEMA_MAP: JSON.stringify(map) }).schemaMap).to.deep.equal({ kind: 'inline', entries: map });
    });

    it('takes the path or s3:// URI of a JSON file holding the map', () => {
      expect(load({ SCHEMA_MAP: 's3://config-bucket/schema-map.json' }).schemaMap).to.deep.equal({
        kind: 'location',
        location: 's3://config-bucket/schema-map.json',
      });
      expect(load({ SCHEMA_MAP: './schema-map.json' }).schemaMap).to.deep.equal({ kind: 'location', location: './schema-map.json' });
    });

    it('rejects a malformed inline map, naming the entry', () => {
      expect(problem({ SCHEMA_MAP: '{"sales/": 3}' })).to.equal(
        'invalid setting SCHEMA_MAP="{\\"sales/\\": 3}": entry "sales/" must be a string (a path or s3:// URI)',
      );
      expect(problem({ SCHEMA_MAP: '{"sales/": "s3://Schemas/x.json"}' })).to.match(/entry "sales\/" bucket name "Schemas" may contain only/);
      expect(problem({ SCHEMA_MAP: '{"sales/": ""}' })).to.match(/entry "sales\/" must not be empty/);
      expect(problem({ SCHEMA_MAP: '{sales: 1}' })).to.match(/is not valid JSON/);
    });

    it('rejects an s3:// location that names no object', () => {
      expect(problem({ SCHEMA_MAP: 's3://config-bucket/' })).to.match(/must name an object/);
      expect(problem({ SCHEMA_MAP: 's3://config-bucket' })).to.match(/must look like s3:\/\/bucket\/key/);
    });

    it('validates a map read from a file with the same schema', () => {
      expect(parseSchemaMapJson('{"a/": "s3://b-1/a.json"}', 's3://cfg/map.json')).to.deep.equal({ 'a/': 's3://b-1/a.json' });
      expect(() => parseSchemaMapJson('["a"]', 's3://cfg/map.json')).to.throw(/^s3:\/\/cfg\/map\.json: must be a JSON object/);
    });
  });

  describe('dataset schemas', () => {
    it('reads SCHEMA_REGISTRY as a bucket and a prefix ending in a slash, and the evolution mode and dataset rule', () => {
      const s = load({ SCHEMA_REGISTRY: 's3://schemas-1/team/', SCHEMA_EVOLUTION: ' Widen ', SCHEMA_DATASET: 'depth:2' });
      expect(s.schemaRegistry).to.deep.equal({ bucket: 'schemas-1', prefix: 'team/' });
      expect(s.schemaEvolution).to.equal('widen');
      expect(s.schemaDataset).to.deep.equal({ kind: 'depth', depth: 2 });
      expect(load({ SCHEMA_REGISTRY: 's3://schemas-1', SCHEMA_DATASET: 'regex:^([^/]+)/' })).to.deep.include({
        schemaRegistry: { bucket: 'schemas-1', prefix: '' },
        schemaDataset: { kind: 'regex', source: '^([^/]+)/' },
      });
    });

    it('names the setting and the rule for each bad value', () => {
      expect(problem({ SCHEMA_REGISTRY: 'schemas-1/team/' })).to.equal('invalid setting SCHEMA_REGISTRY="schemas-1/team/": must look like s3://bucket/prefix/');
      expect(problem({ SCHEMA_REGISTRY: 's3://Schemas/' })).to.match(/^invalid setting SCHEMA_REGISTRY="s3:\/\/Schemas\/": bucket name "Schemas" may contain only/);
      expect(problem({ SCHEMA_EVOLUTION: 'loose' })).to.equal('invalid setting SCHEMA_EVOLUTION="loose": must be one of add-columns, widen, strict');
      expect(problem({ SCHEMA_DATASET: 'depth:0' })).to.equal('invalid setting SCHEMA_DATASET="depth:0": depth must be a whole number from 1 to 100, e.g. depth:1');
      expect(problem({ SCHEMA_DATASET: 'regex:(' })).to.match(/^invalid setting SCHEMA_DATASET="regex:\(": the pattern is not a valid regular expression/);
      expect(problem({ SCHEMA_DATASET: 'by-table' })).to.match(/^invalid setting SCHEMA_DATASET="by-table": must be `folder`/);
    });
  });

  describe('definitions', () => {
    it('map each variable to the camelCase field of the same name', () => {
      for (const d of SETTING_DEFINITIONS) {
        const camel = d.name.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
        expect(d.key, d.name).to.equal(camel);
      }
    });

    it('name each variable once', () => {
      const names = SETTING_DEFINITIONS.map((d) => d.name);
      expect(new Set(names).size).to.equal(names.length);
    });

    it('say what a computed default is', () => {
      for (const d of SETTING_DEFINITIONS) {
        if (typeof d.presence === 'object' && typeof d.presence.default === 'function') {
          expect((d as { shownDefault?: string }).shownDefault, d.name).to.be.a('string').and.not.equal('');
        }
      }
    });
  });
});
