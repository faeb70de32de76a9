/**
 * The IAM policies grant what the code calls and nothing more. The calls are read from the source:
 * every `new XxxCommand(` in the files the service (or an operator command) can run, following
 * relative imports from its entry points, plus the commands its AWS libraries send for it.
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT, readDeployJson } from './deploy-files.js';

/** The IAM action that authorises each API operation (batch operations use their single action). */
const IAM_ACTION: Record<string, string> = {
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  PutObject: 's3:PutObject',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  DeleteObject: 's3:DeleteObject',
  ListObjectsV2: 's3:ListBucket',
  CreateBucket: 's3:CreateBucket',
  GetBucketNotificationConfiguration: 's3:GetBucketNotification',
  PutBucketNotificationConfiguration: 's3:PutBucketNotification',
  ReceiveMessage: 'sqs:ReceiveMessage',
  DeleteMessage: 'sqs:DeleteMessage',
  DeleteMessageBatch: 'sqs:DeleteMessage',
  ChangeMessageVisibility: 'sqs:ChangeMessageVisibility',
  ChangeMessageVisibilityBatch: 'sqs:ChangeMessageVisibility',
  SendMessage: 'sqs:SendMessage',
  SendMessageBatch: 'sqs:SendMessage',
  GetQueueAttributes: 'sqs:GetQueueAttributes',
  SetQueueAttributes: 'sqs:SetQueueAttributes',
  GetQueueUrl: 'sqs:GetQueueUrl',
  CreateQueue: 'sqs:CreateQueue',
  StartMessageMoveTask: 'sqs:StartMessageMoveTask',
  CancelMessageMoveTask: 'sqs:CancelMessageMoveTask',
  ListMessageMoveTasks: 'sqs:ListMessageMoveTasks',
  PutMetricData: 'cloudwatch:PutMetricData',
};

/** Libraries that send AWS commands on our behalf: where their code is, and what we never make them send. */
const AWS_LIBRARIES: Record<string, { dist: string; unused: Record<string, string> }> = {
  'sqs-consumer': { dist: 'node_modules/sqs-consumer/dist/esm', unused: {} },
  '@aws-sdk/lib-storage': {
    dist: 'node_modules/@aws-sdk/lib-storage/dist-es',
    unused: { PutObjectTagging: 'sent only when an Upload is given tags' },
  },
};

/**
 * Granted without a command of its own: without s3:ListBucket, S3 answers GetObject and HeadObject
 * on a missing key with 403 instead of 404, and the service could no longer tell a deleted source
 * (FilesGone) or a not-yet-written output (duplicate check) from a permissions fault.
 */
const FOR_404_SEMANTICS = 's3:ListBucket';

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
}

const list = (value: string | string[]) => [value].flat();

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : /\.(m?js|ts)$/.test(name) ? [path] : [];
  });
}

/** The files reachable from `roots` through relative imports, and the packages they import. */
function reachable(roots: string[]): { files: string[]; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = roots.map((root) => join(REPO_ROOT, root));
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      if (specifier!.startsWith('.')) {
        const target = resolve(dirname(file), specifier!.replace(/\.js$/, '.ts'));
        if (existsSync(target)) pending.push(target);
      } else {
        packages.add(specifier!.startsWith('@') ? specifier!.split('/').slice(0, 2).join('/') : specifier!.split('/')[0]!);
      }
    }
  }
  return { files: [...files], packages };
}

function commandsIn(files: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of files) {
    for (const [, operation] of readFileSync(file, 'utf8').matchAll(/new\s+(?:[\w$]+\.)?([A-Z]\w*?)Command\s*\(/g)) {
      found.set(operation!, [...(found.get(operation!) ?? []), relative(REPO_ROOT, file)]);
    }
  }
  return found;
}

/** Every API operation code reachable from `roots` sends, with where each comes from. */
function operationsOf(roots: string[]): Map<string, string[]> {
  const { files, packages } = reachable(roots);
  const operations = commandsIn(files);
  for (const [name, library] of Object.entries(AWS_LIBRARIES)) {
    if (!packages.has(name)) continue;
    for (const [operation, where] of commandsIn(sourceFiles(join(REPO_ROOT, library.dist)))) {
      if (library.unused[operation]) continue;
      operations.set(operation, [...(operations.get(operation) ?? []), ...where]);
    }
  }
  return operations;
}

function actionsFor(operations: Map<string, string[]>): string[] {
  const unmapped = [...operations.keys()].filter((operation) => !IAM_ACTION[operation]);
  expect(unmapped, 'operations with no IAM action in this test’s table: add them, then to the policy').to.deep.equal([]);
  return [...new Set([...operations.keys()].map((operation) => IAM_ACTION[operation]!))].sort();
}

function grantedBy(policyFile: string): { statements: Statement[]; actions: string[] } {
  const policy = readDeployJson<{ Version: string; Statement: Statement[] }>(policyFile);
  expect(policy.Version).to.equal('2012-10-17');
  const actions = [...new Set(policy.Statement.flatMap((s) => list(s.Action)))].sort();
  return { statements: policy.Statement, actions };
}

describe('IAM policies grant only what the code calls', () => {
  const serviceRoots = sourceFiles(join(REPO_ROOT, 'src/service')).map((file) => relative(REPO_ROOT, file));
  const operatorRoots = ['src/cli/setup.ts', 'src/cli/dlq.ts'].filter((file) => existsSync(join(REPO_ROOT, file)));

  it('uploads are made by our own multipart calls (conditional completes), never tagged', () => {
    const storage = readFileSync(join(REPO_ROOT, 'src/storage/s3.ts'), 'utf8');
    expect(storage).to.include('new CompleteMultipartUploadCommand(');
    expect(storage).not.to.include('new Upload(');
    expect(storage).not.to.match(/\b(tags|Tagging)\s*:/);
  });

  describe('the task role (docker/ecs/task-role-policy.json)', () => {
    const { statements, actions } = grantedBy('docker/ecs/task-role-policy.json');
    const operations = operationsOf(serviceRoots);

    it('allows exactly the actions of the operations the service sends, and s3:ListBucket for honest 404s', () => {
      expect(operations.has('ReceiveMessage'), 'sqs-consumer was followed').to.equal(true);
      expect(operations.has('CreateMultipartUpload'), 'the multipart calls were found').to.equal(true);
      expect(actions).to.deep.equal([...actionsFor(operations), FOR_404_SEMANTICS].sort());
    });

    it('only allows, names no wildcard action, and scopes everything to the named buckets, queues and metric namespace', () => {
      for (const statement of statements) {
        expect(statement.Effect, statement.Sid).to.equal('Allow');
        for (const action of list(statement.Action)) expect(action, statement.Sid).not.to.include('*');
        for (const resource of list(statement.Resource)) {
          if (resource === '*') {
            // PutMetricData has no resource type; the namespace condition is its scope.
            expect(list(statement.Action), statement.Sid).to.deep.equal(['cloudwatch:PutMetricData']);
            expect(statement.Condition).to.deep.equal({ StringEquals: { 'cloudwatch:namespace': 'S3CsvConverter' } });
          } else {
            expect(resource, statement.Sid).to.match(/^arn:aws:(s3:::acme-csv-(landing|converted)(\/\*)?|sqs:eu-west-1:111122223333:s3cc-events(-dlq)?)$/);
          }
        }
      }
    });

    it('reads sources only from the input bucket, writes only to the output bucket, dead-letters only to the DLQ', () => {
      const on = (action: string) => statements.filter((s) => list(s.Action).includes(action)).flatMap((s) => list(s.Resource)).sort();
      expect(on('s3:PutObject')).to.deep.equal(['arn:aws:s3:::acme-csv-converted/*']);
      expect(on('s3:DeleteObject')).to.deep.equal(['arn:aws:s3:::acme-csv-converted/*']);
      expect(on('s3:GetObject')).to.deep.equal(['arn:aws:s3:::acme-csv-converted/*', 'arn:aws:s3:::acme-csv-landing/*']);
      expect(on('sqs:ReceiveMessage')).to.deep.equal(['arn:aws:sqs:eu-west-1:111122223333:s3cc-events']);
      expect(on('sqs:DeleteMessage')).to.deep.equal(['arn:aws:sqs:eu-west-1:111122223333:s3cc-events']);
      expect(on('sqs:SendMessage')).to.deep.equal(['arn:aws:sqs:eu-west-1:111122223333:s3cc-events-dlq']);
    });

    it('names the same queue, buckets and namespace as the task definition', () => {
      const task = readDeployJson('task-definition.json');
      const env = Object.fromEntries((task.containerDefinitions[0].environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
      const text = JSON.stringify(statements);
      expect(text).to.include(`:s3:::${env.OUTPUT_BUCKET}/*`);
      expect(text).to.include(`:sqs:${env.AWS_REGION}:111122223333:${new URL(env.QUEUE_URL).pathname.split('/').pop()}"`);
      expect(text).to.include(`:sqs:${env.AWS_REGION}:111122223333:${new URL(env.DLQ_URL).pathname.split('/').pop()}"`);
      expect(text).to.include(`"cloudwatch:namespace":"${env.METRICS_NAMESPACE}"`);
    });
  });

  describe('the operator policy (docker/ecs/operator-policy.json), for `setup` and `dlq`', () => {
    it('allows exactly the actions of the operations those commands send', () => {
      const { actions, statements } = grantedBy('docker/ecs/operator-policy.json');
      expect(actions).to.deep.equal(actionsFor(operationsOf(operatorRoots)));
      for (const statement of statements) for (const resource of list(statement.Resource)) expect(resource).not.to.equal('*');
    });
  });

  describe('the execution role (docker/ecs/execution-role-policy.json)', () => {
    it('pulls only our repository and writes only our log group', () => {
      const { statements } = grantedBy('docker/ecs/execution-role-policy.json');
      const task = readDeployJson('task-definition.json');
      const group = task.containerDefinitions[0].logConfiguration.options['awslogs-group'];
      const text = JSON.stringify(statements);
      expect(text).to.include(`:log-group:${group}:*`);
      expect(text).to.include(':repository/s3-csv-converter"');
      for (const statement of statements) {
        if (list(statement.Resource).includes('*')) expect(list(statement.Action)).to.deep.equal(['ecr:GetAuthorizationToken']);
      }
    });

    it('both roles trust only ECS tasks of the same account', () => {
      const trust = readDeployJson('docker/ecs/ecs-tasks-trust-policy.json');
      expect(trust.Statement).to.have.length(1);
      expect(trust.Statement[0].Principal).to.deep.equal({ Service: 'ecs-tasks.amazonaws.com' });
      expect(trust.Statement[0].Condition.StringEquals['aws:SourceAccount']).to.equal('111122223333');
    });
  });
  describe('the scheduled backfill', () => {
    const task = readDeployJson('docker/ecs/backfill-task-definition.json');
    const job = task.containerDefinitions[0];
    const env = Object.fromEntries((job.environment as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    const inputBucket = job.command[job.command.indexOf('--bucket') + 1] as string;
    const queueName = new URL(env.QUEUE_URL).pathname.split('/').pop()!;

    describe('its task role (docker/ecs/backfill-task-role-policy.json)', () => {
      const { statements, actions } = grantedBy('docker/ecs/backfill-task-role-policy.json');
      const operations = operationsOf(['src/cli/backfill.ts']);

      it('allows exactly the actions of the operations `backfill` sends: list, HEAD of outputs, send', () => {
        expect([...operations.keys()].sort()).to.deep.equal(['HeadObject', 'ListObjectsV2', 'SendMessageBatch']);
        expect(actions).to.deep.equal(actionsFor(operations));
      });

      it('lists both buckets, reads only outputs, sends only to the service’s queue, and names no wildcard', () => {
        const on = (action: string) => statements.filter((s) => list(s.Action).includes(action)).flatMap((s) => list(s.Resource)).sort();
        expect(on('s3:ListBucket')).to.deep.equal([`arn:aws:s3:::${env.OUTPUT_BUCKET}`, `arn:aws:s3:::${inputBucket}`].sort());
        expect(on('s3:GetObject')).to.deep.equal([`arn:aws:s3:::${env.OUTPUT_BUCKET}/*`]);
        expect(on('sqs:SendMessage')).to.deep.equal([`arn:aws:sqs:${env.AWS_REGION}:111122223333:${queueName}`]);
        for (const statement of statements) {
          expect(statement.Effect, statement.Sid).to.equal('Allow');
          for (const action of list(statement.Action)) expect(action, statement.Sid).not.to.include('*');
          for (const resource of list(statement.Resource)) expect(resource, statement.Sid).not.to.equal('*');
        }
      });

      it('names the same buckets and queue as the service’s task role', () => {
        const service = JSON.stringify(grantedBy('docker/ecs/task-role-policy.json').statements);
        for (const resource of statements.flatMap((s) => list(s.Resource))) expect(service, resource).to.include(`"${resource}"`);
      });
    });

    describe('the role EventBridge runs it with (docker/ecs/backfill-events-*.json)', () => {
      const { statements, actions } = grantedBy('docker/ecs/backfill-events-role-policy.json');
      const targets = readDeployJson('docker/ecs/backfill-schedule-targets.json');
      const rule = readDeployJson('docker/ecs/backfill-schedule-rule.json');
      const target = targets.Targets[0];

      it('may run only the backfill task definition, only on the cluster, and pass only that task’s two roles to ECS tasks', () => {
        expect(actions).to.deep.equal(['ecs:RunTask', 'iam:PassRole']);
        const run = statements.find((s) => list(s.Action).includes('ecs:RunTask'))!;
        const family = target.EcsParameters.TaskDefinitionArn as string;
        expect(list(run.Resource).sort()).to.deep.equal([family, `${family}:*`]);
        expect(run.Condition).to.deep.equal({ ArnEquals: { 'ecs:cluster': target.Arn } });
        const pass = statements.find((s) => list(s.Action).includes('iam:PassRole'))!;
        expect(list(pass.Resource).sort()).to.deep.equal([task.executionRoleArn, task.taskRoleArn].sort());
        expect(pass.Condition).to.deep.equal({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
      });

      it('is trusted by EventBridge for this account’s backfill rule only, and is the role the target names', () => {
        const trust = readDeployJson('docker/ecs/backfill-events-trust-policy.json');
        expect(trust.Statement).to.have.length(1);
        const [statement] = trust.Statement;
        expect(statement.Principal).to.deep.equal({ Service: 'events.amazonaws.com' });
        expect(statement.Condition.StringEquals['aws:SourceAccount']).to.equal('111122223333');
        expect(statement.Condition.ArnEquals['aws:SourceArn']).to.equal(`arn:aws:events:${env.AWS_REGION}:111122223333:rule/${rule.Name}`);
        expect(target.RoleArn).to.equal('arn:aws:iam::111122223333:role/s3-csv-converter-backfill-events');
      });
    });
  });
});
