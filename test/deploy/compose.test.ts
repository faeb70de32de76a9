import { expect } from 'chai';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadSettings, SETTING_DEFINITIONS } from '../../src/config/settings.js';
import { REPO_ROOT, readRepoFile } from './deploy-files.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string; secrets?: string[] };
  profiles?: string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  volumes?: string[];
  tmpfs?: string[];
  read_only?: boolean;
  depends_on?: Record<string, { condition: string }>;
  entrypoint?: string[];
  working_dir?: string;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  networks?: { default?: { aliases?: string[] } };
}

interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}

/** The AWS SDK's own credential variables; every other variable a converter gets must be a setting. */
const SDK_CREDENTIALS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
const INIT_SCRIPT = 'docker/localstack/init-pipeline.py';
const CONVERTERS = ['converter', 'converter-moto'];

const seconds = (duration: string) => Number(/^(\d+)s$/.exec(duration)?.[1] ?? NaN);
const envOf = (service: Service) => Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v ?? '')]));

describe('docker-compose.yml', () => {
  // Merge keys (<<) are how the file shares the pipeline names and the converter definition.
  const compose = parse(readRepoFile('docker-compose.yml'), { merge: true }) as Compose;
  const { services } = compose;
  const settingNames = SETTING_DEFINITIONS.map((d) => d.name);
  const initScript = readRepoFile(INIT_SCRIPT);
  const initReads = [...initScript.matchAll(/os\.environ\.get\("([A-Z0-9_]+)"/g)].map((m) => m[1]!);

  it('has LocalStack and the converter by default, moto as a profile, and a drop tool', () => {
    const byProfile = (profile: string | undefined) =>
      Object.keys(services).filter((name) => (services[name]!.profiles ?? [undefined] as (string | undefined)[]).includes(profile)).sort();
    expect(byProfile(undefined)).to.deep.equal(['converter', 'localstack']);
    expect(byProfile('moto')).to.deep.equal(['converter-moto', 'moto', 'moto-init']);
    expect(byProfile('tools')).to.deep.equal(['drop']);
  });

  it('pins LocalStack 4.14.0, passes LOCALSTACK_AUTH_TOKEN through, and makes its URLs resolvable between containers', () => {
    const localstack = services.localstack!;
    expect(localstack.image).to.equal('localstack/localstack:4.14.0');
    expect(envOf(localstack)).to.include({ LOCALSTACK_HOST: 'localstack:4566', LOCALSTACK_AUTH_TOKEN: '${LOCALSTACK_AUTH_TOKEN:-}' });
    expect(localstack.healthcheck?.test.join(' ')).to.include('/_localstack/init/ready');
  });

  it('mounts the init script as a ready.d hook in LocalStack and runs the same script in the moto profile', () => {
    expect(services.localstack!.volumes).to.include(`./${INIT_SCRIPT}:/etc/localstack/init/ready.d/init-pipeline.py:ro`);
    const init = services['moto-init']!;
    const mount = init.volumes!.find((v) => v.startsWith(`./${INIT_SCRIPT}:`))!;
    expect(init.entrypoint).to.deep.equal(['python3', mount.split(':')[1]]);
    expect(init.image).to.equal(services.moto!.image);
    // It waits for moto itself; a depends_on chain would not start under podman 4.
    expect(init.depends_on).to.equal(undefined);
    expect(initScript).to.include('def wait_until_answering');
  });

  it('pins moto to the version the tests run (.ci/requirements.txt), serving on the port the converters call', () => {
    const tested = /^moto\[server\]==([\d.]+)$/m.exec(readRepoFile('.ci/requirements.txt'))?.[1];
    expect(services.moto!.image).to.equal(`motoserver/moto:${tested}`);
    expect(envOf(services.moto!).MOTO_PORT).to.equal('4566');
  });

  it('lets both emulators answer as `emulator:4566`, the endpoint of the converters and the drop tool', () => {
    for (const name of ['localstack', 'moto']) expect(services[name]!.networks?.default?.aliases, name).to.include('emulator');
    for (const name of [...CONVERTERS, 'drop', 'moto-init']) expect(envOf(services[name]!).AWS_ENDPOINT_URL, name).to.equal('http://emulator:4566');
  });

  it('gives the init script only variables it reads, and the converters the names it creates', () => {
    for (const name of ['localstack', 'moto-init']) {
      const names = Object.keys(envOf(services[name]!)).filter((key) => key.startsWith('S3CC_'));
      expect(names, name).to.have.length.at.least(3);
      for (const key of names) expect(initReads, `${name}: ${key}`).to.include(key);
    }
    const names = envOf(services.localstack!);
    expect(envOf(services['moto-init']!)).to.include(Object.fromEntries(Object.entries(names).filter(([k]) => k.startsWith('S3CC_'))));
    for (const name of CONVERTERS) {
      const env = envOf(services[name]!);
      expect(env.OUTPUT_BUCKET, name).to.equal(names.S3CC_OUTPUT_BUCKET);
      expect(new URL(env.QUEUE_URL!).pathname.split('/').pop(), name).to.equal(names.S3CC_QUEUE);
    }
    expect(envOf(services.drop!).S3CC_INPUT_BUCKET).to.equal(names.S3CC_INPUT_BUCKET);
  });

  for (const name of CONVERTERS) {
    describe(`the ${name} service`, () => {
      const service = services[name]!;
      const env = envOf(service);

      it('uses only setting names the code defines (and the SDK’s credentials), with values it accepts', () => {
        const unknown = Object.keys(env).filter((key) => !settingNames.includes(key) && !SDK_CREDENTIALS.includes(key));
        expect(unknown).to.deep.equal([]);
        expect(() => loadSettings(env)).not.to.throw();
      });

      it('is built from the Dockerfile, with the extra CA as a build secret', () => {
        expect(service.build?.context).to.equal('.');
        expect(existsSync(join(REPO_ROOT, service.build?.dockerfile ?? 'Dockerfile'))).to.equal(true);
        expect(service.build?.secrets).to.deep.equal(['extra_ca']);
        expect(compose.secrets.extra_ca!.file).to.equal('${NODE_EXTRA_CA_CERTS:-/dev/null}');
      });

      it('waits for its emulator to hold the pipeline before starting', () => {
        const wanted =
          name === 'converter'
            ? { localstack: { condition: 'service_healthy' } }
            : { moto: { condition: 'service_started' }, 'moto-init': { condition: 'service_completed_successfully' } };
        expect(service.depends_on).to.deep.equal(wanted);
      });

      it('publishes the health port, runs read-only with TMP_DIR on a tmpfs, and is given longer than its grace period to stop', () => {
        const settings = loadSettings(env);
        expect(service.ports).to.deep.equal([`127.0.0.1:${settings.healthPort}:${settings.healthPort}`]);
        expect(service.read_only).to.equal(true);
        expect(service.tmpfs).to.deep.equal([settings.tmpDir]);
        expect(seconds(service.stop_grace_period!)).to.be.above(settings.shutdownGraceSeconds + 5);
        expect(settings.stopTimeoutSeconds, 'STOP_TIMEOUT_SECONDS is the stop_grace_period').to.equal(seconds(service.stop_grace_period!));
      });
    });
  }

  it('runs the drop tool from the service image with the repository mounted, so `samples/…` paths work', () => {
    const drop = services.drop!;
    expect(drop.image).to.equal(services.converter!.image);
    expect(drop.entrypoint).to.deep.equal(['node', '/app/docker/drop.mjs']);
    expect(drop.volumes).to.include(`.:${drop.working_dir}:ro`);
    expect(existsSync(join(REPO_ROOT, 'samples', 'sales.csv'))).to.equal(true);
  });

  it('mounts only files and folders that exist in the repository', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        expect(source.startsWith('.'), `${name}: ${volume} is a bind mount of the repository`).to.equal(true);
        expect(existsSync(join(REPO_ROOT, source)), `${name}: ${source}`).to.equal(true);
        if (source.endsWith('.py') || source.endsWith('.mjs')) expect(statSync(join(REPO_ROOT, source)).isFile()).to.equal(true);
      }
    }
  });
});

describe('the LocalStack image made where no registry gives it (docker/localstack/)', () => {
  const containerfile = readRepoFile('docker/localstack/Containerfile');
  const script = readRepoFile('docker/localstack/build-image.sh');
  const compose = parse(readRepoFile('docker-compose.yml'), { merge: true }) as Compose;
  const instruction = (name: string) => [...containerfile.matchAll(new RegExp(`^${name}\\s+(.+)$`, 'gm'))].map((m) => m[1]!.trim());

  it('is the image the compose file and the tests ask for, at the same version', () => {
    const version = /^version=([\d.]+)$/m.exec(script)?.[1];
    const wanted = `localstack/localstack:${version}`;
    expect(compose.services.localstack!.image).to.equal(wanted);
    // Read as text: importing test/support/emulator.ts would make this file an emulator-backed one.
    expect(readRepoFile('test/support/emulator.ts')).to.include(`LOCALSTACK_IMAGE = '${wanted}'`);
    expect(script).to.include('--build-arg "LOCALSTACK_VERSION=$version"');
    expect(containerfile).to.include('"localstack-core[runtime]==${LOCALSTACK_VERSION}"');
  });

  it('exposes only the gateway port, bakes DNS_ADDRESS=0 in, and runs the runtime module with the init hooks', () => {
    expect(instruction('EXPOSE')).to.deep.equal(['4566']);
    expect(containerfile).to.match(/^\s+DNS_ADDRESS=0 \\$/m);
    expect(instruction('ENTRYPOINT')).to.deep.equal(['["docker-entrypoint.sh"]']);
    const entrypoint = readRepoFile('docker/localstack/docker-entrypoint.sh');
    expect(entrypoint).to.include('exec python -m localstack.runtime.main');
    expect(entrypoint).to.include('python -m localstack.runtime.init BOOT');
    expect(containerfile).to.include('/etc/localstack/init/ready.d');
  });

  it('takes the extra CA only as a build secret, never copied into a layer or an ENV', () => {
    const mentions = containerfile.split('\n').filter((line) => /extra_ca|CA_CERT|SSL_CERT_FILE|PIP_CERT/.test(line) && !line.startsWith('#'));
    expect(mentions.length).to.be.at.least(2);
    for (const line of mentions) expect(line, line).to.match(/--mount=type=secret,id=extra_ca|\/run\/secrets\/extra_ca/);
    expect(instruction('COPY')).to.deep.equal(['docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh']);
    expect(script).to.include('extra_ca_secret');
  });
});
