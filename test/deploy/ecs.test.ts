import { expect } from 'chai';
import { Command } from 'commander';
import { parseModifiedSince } from '../../src/backfill/since.js';
import { BACKFILL_SETTINGS, registerBackfillCommand } from '../../src/cli/backfill.js';
import { loadSettings, loadSettingsSubset, SETTING_DEFINITIONS } from '../../src/config/settings.js';
import { formatSettingRows, loadFormatOptions } from '../../src/config/format-settings.js';
import { registerBuiltinFormats } from '../../src/formats/builtin.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import { MetricName } from '../../src/metrics/names.js';
import { DEPLOY_JSON_FILES, PLACEHOLDERS, placeholdersIn, readDeployJson, readRepoFile } from './deploy-files.js';

interface ContainerDefinition {
  name: string;
  image: string;
  essential: boolean;
  user: string;
  readonlyRootFilesystem: boolean;
  mountPoints: { sourceVolume: string; containerPath: string; readOnly?: boolean }[];
  linuxParameters?: { initProcessEnabled?: boolean };
  stopTimeout: number;
  command?: string[];
  environment: { name: string; value: string }[];
  secrets?: unknown[];
  healthCheck?: { command: string[]; interval: number; timeout: number; retries: number; startPeriod: number };
  logConfiguration: { logDriver: string; options: Record<string, string> };
  portMappings?: unknown[];
}

interface TaskDefinition {
  family: string;
  requiresCompatibilities: string[];
  networkMode: string;
  cpu: string;
  memory: string;
  executionRoleArn: string;
  taskRoleArn: string;
  volumes: { name: string; host?: unknown }[];
  containerDefinitions: ContainerDefinition[];
}

interface MetricStat {
  Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[] };
  Stat: string;
  Period?: number;
}

interface MetricQuery {
  Id: string;
  Expression?: string;
  MetricStat?: MetricStat;
  ReturnData?: boolean;
}

/** Settings left unset on purpose: unset is the production meaning, and no value can say it. */
const DELIBERATELY_UNSET: Record<string, string> = {
  AWS_ENDPOINT_URL: 'unset means the real AWS endpoints; it exists for emulators',
  SCHEMA_MAP: 'unset means every column type is inferred',
  SCHEMA_REGISTRY: 'unset means no dataset schemas: each file keeps its own inferred types',
  FORMAT_PLUGINS: 'unset means the built-in formats only',
  CSV_DELIMITER: 'unset means detected from each file’s header',
};

/** How long the service may take after SIGTERM beyond the grace period: releasing unfinished messages (src/service/serve.ts). */
const RELEASE_SECONDS = 10;

describe('ECS Fargate deployment files', () => {
  const taskDefinition = readDeployJson<TaskDefinition>('task-definition.json');
  const container = taskDefinition.containerDefinitions[0]!;
  const env = Object.fromEntries(container.environment.map(({ name, value }) => [name, value]));

  it('parse as JSON and use only the documented placeholders', () => {
    for (const file of DEPLOY_JSON_FILES) {
      const text = readRepoFile(file);
      expect(() => JSON.parse(text), file).not.to.throw();
      for (const token of placeholdersIn(text)) expect(Object.keys(PLACEHOLDERS), `${file} uses ${token}`).to.include(token);
    }
  });

  describe('task-definition.json', () => {
    it('is a Fargate task on awsvpc with 1 vCPU and 2 GB, and one essential container', () => {
      expect(taskDefinition).to.include({ family: 's3-csv-converter', networkMode: 'awsvpc', cpu: '1024', memory: '2048' });
      expect(taskDefinition.requiresCompatibilities).to.deep.equal(['FARGATE']);
      expect(taskDefinition.containerDefinitions).to.have.length(1);
      expect(container.essential).to.equal(true);
      expect(readRepoFile('task-definition.json')).to.include('"image": "<IMAGE>"');
    });

    it('names its task and execution roles by placeholder ARNs', () => {
      const raw = JSON.parse(readRepoFile('task-definition.json')) as TaskDefinition;
      expect(raw.taskRoleArn).to.equal('arn:aws:iam::<ACCOUNT_ID>:role/s3-csv-converter-task');
      expect(raw.executionRoleArn).to.equal('arn:aws:iam::<ACCOUNT_ID>:role/s3-csv-converter-execution');
    });

    it('sets every setting the code defines, by its exact name, except those whose unset meaning is wanted', () => {
      // The built-in formats' codec settings come from the format registry.
      const formats = formatSettingRows(registerBuiltinFormats(new FormatRegistry())).map((row) => row.name);
      const defined = [...SETTING_DEFINITIONS.map((d) => d.name), ...formats];
      const names = container.environment.map((e) => e.name);
      expect(new Set(names).size, 'no duplicates').to.equal(names.length);
      expect(names.filter((name) => !defined.includes(name)), 'names the code does not read').to.deep.equal([]);
      expect([...names, ...Object.keys(DELIBERATELY_UNSET)].sort()).to.deep.equal([...defined].sort());
    });

    it('has values the service accepts at start-up', () => {
      const settings = loadSettings(env);
      expect(loadFormatOptions(registerBuiltinFormats(new FormatRegistry()), env)).to.have.keys('parquet', 'avro');
      expect(settings.tmpDir).to.equal('/tmp');
      expect(settings.logPretty).to.equal(false);
      expect(settings.healthPort).to.be.greaterThan(0);
    });

    it('stops later than the service drains: stopTimeout covers SHUTDOWN_GRACE_SECONDS and the release that follows', () => {
      const grace = loadSettings(env).shutdownGraceSeconds;
      expect(container.stopTimeout).to.be.at.least(grace + RELEASE_SECONDS + 5);
      expect(loadSettings(env).stopTimeoutSeconds, 'STOP_TIMEOUT_SECONDS is the stopTimeout the service plans its exit by').to.equal(container.stopTimeout);
      expect(container.stopTimeout, 'Fargate allows at most 120').to.be.at.most(120);
      expect(container.linuxParameters?.initProcessEnabled, 'an init forwards SIGTERM and reaps').to.equal(true);
    });

    it('runs as the image’s non-root user on a read-only root, writing only to a /tmp task volume that is TMP_DIR', () => {
      expect(container.user).to.equal('1000:1000');
      expect(readRepoFile('Dockerfile')).to.match(/^USER 1000:1000$/m);
      expect(container.readonlyRootFilesystem).to.equal(true);
      expect(container.mountPoints).to.deep.equal([{ sourceVolume: 'tmp', containerPath: env.TMP_DIR, readOnly: false }]);
      expect(taskDefinition.volumes).to.deep.equal([{ name: 'tmp' }]);
    });

    it('health-checks with the image’s script, within the service’s own poll-age limit', () => {
      expect(container.healthCheck!.command).to.deep.equal(['CMD', 'node', '/app/docker/healthcheck.mjs']);
      expect(readRepoFile('Dockerfile')).to.include('COPY docker/healthcheck.mjs ./docker/healthcheck.mjs');
      expect(readRepoFile('Dockerfile')).to.match(/WORKDIR \/app/);
      const { interval, timeout, retries, startPeriod } = container.healthCheck!;
      expect(timeout).to.be.below(interval);
      expect(retries).to.be.within(1, 10);
      expect(startPeriod).to.be.within(0, 300);
    });

    it('logs through awslogs in non-blocking mode, so a slow log service never stalls the process', () => {
      expect(container.logConfiguration.logDriver).to.equal('awslogs');
      expect(container.logConfiguration.options).to.include({
        mode: 'non-blocking',
        'awslogs-group': '/ecs/s3-csv-converter',
        'awslogs-region': PLACEHOLDERS['<REGION>'],
      });
      expect(container.logConfiguration.options['max-buffer-size']).to.match(/^\d+m$/);
    });

    it('opens no ports: the service only calls out, and the health check runs inside the task', () => {
      expect(container.portMappings ?? []).to.deep.equal([]);
    });
  });

  describe('docker/ecs/', () => {
    const queueName = new URL(env.QUEUE_URL!).pathname.split('/').pop()!;
    const dlqName = new URL(env.DLQ_URL!).pathname.split('/').pop()!;

    it('service.json runs the task definition on Fargate in private subnets, with a rollback circuit breaker', () => {
      const service = readDeployJson('docker/ecs/service.json');
      expect(service).to.include({ serviceName: 's3-csv-converter', taskDefinition: taskDefinition.family, launchType: 'FARGATE' });
      expect(service.networkConfiguration.awsvpcConfiguration.assignPublicIp).to.equal('DISABLED');
      expect(service.networkConfiguration.awsvpcConfiguration.subnets).to.have.length.at.least(2);
      expect(service.deploymentConfiguration.deploymentCircuitBreaker).to.deep.equal({ enable: true, rollback: true });
    });

    it('scales on backlog per task: ApproximateNumberOfMessagesVisible ÷ RunningTaskCount, for this queue and service', () => {
      const target = readDeployJson('docker/ecs/scaling-target.json');
      const policy = readDeployJson('docker/ecs/scaling-policy.json');
      const service = readDeployJson('docker/ecs/service.json');
      const resourceId = `service/${service.cluster}/${service.serviceName}`;
      expect(target).to.include({ ServiceNamespace: 'ecs', ResourceId: resourceId, ScalableDimension: 'ecs:service:DesiredCount' });
      expect(target.MinCapacity, 'the division needs a running task').to.be.at.least(1);
      expect(target.MaxCapacity).to.be.above(target.MinCapacity);
      expect(policy).to.include({ PolicyType: 'TargetTrackingScaling', ResourceId: resourceId, ScalableDimension: target.ScalableDimension });

      const config = policy.TargetTrackingScalingPolicyConfiguration;
      const metrics = config.CustomizedMetricSpecification.Metrics as MetricQuery[];
      const byName = (name: string) => metrics.find((m) => m.MetricStat?.Metric.MetricName === name)!;
      const visible = byName('ApproximateNumberOfMessagesVisible');
      const tasks = byName('RunningTaskCount');
      expect(visible.MetricStat!.Metric).to.deep.include({ Namespace: 'AWS/SQS', Dimensions: [{ Name: 'QueueName', Value: queueName }] });
      expect(tasks.MetricStat!.Metric).to.deep.include({
        Namespace: 'ECS/ContainerInsights',
        Dimensions: [
          { Name: 'ClusterName', Value: service.cluster },
          { Name: 'ServiceName', Value: service.serviceName },
        ],
      });
      const returned = metrics.filter((m) => m.ReturnData !== false);
      expect(returned).to.have.length(1);
      expect(returned[0]!.Expression).to.equal(`${visible.Id} / ${tasks.Id}`);
      expect(config.TargetValue).to.be.a('number').above(0);
      expect(config.ScaleInCooldown).to.be.at.least(config.ScaleOutCooldown);
    });

    it('alarms on dead letters, on the oldest message’s age, on files given up as gone, and on the failure rate from the service’s metrics', () => {
      const alarms = readDeployJson<Record<string, any>[]>('docker/ecs/alarms.json');
      const named = (suffix: string) => alarms.find((a) => a.AlarmName === `s3-csv-converter-${suffix}`)!;
      expect(named('dead-letters')).to.deep.include({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: dlqName }],
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(named('oldest-message-age')).to.deep.include({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: queueName }],
      });
      // A file acknowledged as deleted is never converted: each one should reach a person.
      expect(named('files-gone')).to.deep.include({
        Namespace: env.METRICS_NAMESPACE,
        MetricName: MetricName.FilesGone,
        Dimensions: [{ Name: 'Service', Value: env.METRICS_SERVICE_NAME }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      const rate = named('failure-rate').Metrics as MetricQuery[];
      const stats = rate.filter((m) => m.MetricStat).map((m) => m.MetricStat!.Metric);
      expect(stats.map((m) => m.MetricName).sort()).to.deep.equal([MetricName.FilesConverted, MetricName.FilesFailed]);
      for (const metric of stats) {
        expect(metric.Namespace).to.equal(env.METRICS_NAMESPACE);
        expect(metric.Dimensions).to.deep.equal([{ Name: 'Service', Value: env.METRICS_SERVICE_NAME }]);
      }
      for (const alarm of alarms) {
        expect(alarm.TreatMissingData, alarm.AlarmName).to.equal('notBreaching');
        expect(alarm.AlarmActions, alarm.AlarmName).to.have.length.at.least(1);
      }
    });

    it('the dashboard shows every metric the service sends, in its namespace and Service dimension', () => {
      const dashboard = readDeployJson<{ widgets: { type: string; properties: { metrics?: unknown[][] } }[] }>('docker/ecs/dashboard.json');
      const shown = new Set<string>();
      for (const widget of dashboard.widgets.filter((w) => w.type === 'metric')) {
        for (const row of widget.properties.metrics ?? []) {
          const [namespace, name, ...rest] = row.filter((part) => typeof part === 'string') as string[];
          if (namespace !== env.METRICS_NAMESPACE) continue;
          expect(rest, `${name} dimensions`).to.deep.equal(['Service', env.METRICS_SERVICE_NAME]);
          shown.add(name!);
        }
      }
      // MetricsFlushFailures is kept locally (health endpoint) and never sent.
      const sent = Object.values(MetricName).filter((name) => name !== MetricName.MetricsFlushFailures);
      expect([...shown].sort()).to.deep.equal([...sent].sort());
    });
  });
  describe('the scheduled backfill (docker/ecs/backfill-*.json)', () => {
    const backfill = readDeployJson<TaskDefinition>('docker/ecs/backfill-task-definition.json');
    const rawBackfill = JSON.parse(readRepoFile('docker/ecs/backfill-task-definition.json')) as TaskDefinition;
    const job = backfill.containerDefinitions[0]!;
    const jobEnv = Object.fromEntries(job.environment.map(({ name, value }) => [name, value]));
    const rule = readDeployJson('docker/ecs/backfill-schedule-rule.json');
    const targets = readDeployJson('docker/ecs/backfill-schedule-targets.json');
    const service = readDeployJson('docker/ecs/service.json');

    it('is a small Fargate task of the same image, as the same non-root user on a read-only root', () => {
      expect(backfill).to.include({ family: 's3-csv-converter-backfill', networkMode: 'awsvpc', cpu: '256', memory: '512' });
      expect(backfill.requiresCompatibilities).to.deep.equal(['FARGATE']);
      expect(backfill.containerDefinitions).to.have.length(1);
      expect(job).to.include({ essential: true, image: container.image, user: container.user, readonlyRootFilesystem: true });
      expect(job.linuxParameters?.initProcessEnabled).to.equal(true);
      expect(job.portMappings ?? [], 'opens no ports').to.deep.equal([]);
      expect(job.healthCheck, 'a job that ends is not health-checked').to.equal(undefined);
    });

    it('runs `backfill` on the input bucket with options the command knows and values it accepts', () => {
      const [name, ...args] = job.command!;
      expect(name).to.equal('backfill');
      const program = new Command();
      const command = registerBackfillCommand(program, { registry: registerBuiltinFormats(new FormatRegistry()) });
      const known = command.options.map((option) => option.long);
      for (const arg of args.filter((a) => a.startsWith('--'))) expect(known, arg).to.include(arg);
      const value = (flag: string) => args[args.indexOf(flag) + 1];
      expect(value('--bucket')).to.equal(PLACEHOLDERS['<INPUT_BUCKET>']);
      expect(parseModifiedSince(value('--modified-since')!)).to.be.instanceOf(Date);
      expect(args).to.include('--json');
      expect(args).not.to.include('--dry-run');
    });

    it('reads where outputs live from the same settings as the service, with the same values, and nothing more', () => {
      const reads = SETTING_DEFINITIONS.filter((d) => [...BACKFILL_SETTINGS, 'queueUrl'].includes(d.key)).map((d) => d.name);
      const names = job.environment.map((e) => e.name);
      expect([...names, 'AWS_ENDPOINT_URL'].sort()).to.deep.equal([...reads].sort());
      for (const name of names) expect(jobEnv[name], name).to.equal(env[name]);
      expect(() => loadSettingsSubset([...BACKFILL_SETTINGS, 'queueUrl'], jobEnv)).not.to.throw();
    });

    it('has its own task role, the service’s execution role, and logs to the service’s log group', () => {
      expect(rawBackfill.taskRoleArn).to.equal('arn:aws:iam::<ACCOUNT_ID>:role/s3-csv-converter-backfill');
      expect(backfill.executionRoleArn).to.equal(taskDefinition.executionRoleArn);
      expect(job.logConfiguration.logDriver).to.equal('awslogs');
      expect(job.logConfiguration.options).to.include({
        'awslogs-group': container.logConfiguration.options['awslogs-group'],
        'awslogs-region': PLACEHOLDERS['<REGION>'],
        'awslogs-stream-prefix': 'backfill',
        mode: 'non-blocking',
      });
    });

    it('is run by an EventBridge rule on a schedule, on the service’s cluster and network', () => {
      expect(rule.Name).to.equal('s3-csv-converter-backfill');
      expect(rule.State).to.equal('ENABLED');
      expect(rule.ScheduleExpression).to.match(/^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\((\S+ ){5}\S+\))$/);
      expect(targets.Rule).to.equal(rule.Name);
      expect(targets.Targets).to.have.length(1);
      const target = targets.Targets[0];
      expect(target.Arn).to.equal(`arn:aws:ecs:${PLACEHOLDERS['<REGION>']}:${PLACEHOLDERS['<ACCOUNT_ID>']}:cluster/${service.cluster}`);
      expect(target.RoleArn).to.equal(`arn:aws:iam::${PLACEHOLDERS['<ACCOUNT_ID>']}:role/s3-csv-converter-backfill-events`);
      const ecs = target.EcsParameters;
      expect(ecs).to.include({ TaskCount: 1, LaunchType: 'FARGATE' });
      expect(ecs.TaskDefinitionArn).to.equal(`arn:aws:ecs:${PLACEHOLDERS['<REGION>']}:${PLACEHOLDERS['<ACCOUNT_ID>']}:task-definition/${backfill.family}`);
      const network = ecs.NetworkConfiguration.awsvpcConfiguration;
      const serviceNetwork = service.networkConfiguration.awsvpcConfiguration;
      expect(network).to.deep.equal({ Subnets: serviceNetwork.subnets, SecurityGroups: serviceNetwork.securityGroups, AssignPublicIp: 'DISABLED' });
    });
  });
});
