/** Reads the deployment files (compose, task definition, docker/ecs/) and fills their placeholders for validation. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: walks up from this file, which runs from test/deploy or dist/test/deploy. */
export const REPO_ROOT = (() => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'Dockerfile')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error('no Dockerfile above the tests');
  }
})();

export function readRepoFile(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

/**
 * The placeholders a deployer replaces (README, "Deploying to ECS Fargate"), each with a value
 * of the right shape so the filled files can be checked like real ones.
 */
export const PLACEHOLDERS: Readonly<Record<string, string>> = {
  '<ACCOUNT_ID>': '111122223333',
  '<REGION>': 'eu-west-1',
  '<IMAGE>': '111122223333.dkr.ecr.eu-west-1.amazonaws.com/s3-csv-converter:1.0.0',
  '<CLUSTER>': 'data-pipelines',
  '<INPUT_BUCKET>': 'acme-csv-landing',
  '<OUTPUT_BUCKET>': 'acme-csv-converted',
  '<PRIVATE_SUBNET_ID_A>': 'subnet-0123456789abcdef0',
  '<PRIVATE_SUBNET_ID_B>': 'subnet-0fedcba9876543210',
  '<SECURITY_GROUP_ID>': 'sg-0123456789abcdef0',
};

export function placeholdersIn(text: string): string[] {
  return [...new Set(text.match(/<[A-Z][A-Z0-9_]*>/g) ?? [])];
}

export function fillPlaceholders(text: string): string {
  return text.replace(/<[A-Z][A-Z0-9_]*>/g, (token) => {
    const value = PLACEHOLDERS[token];
    if (value === undefined) throw new Error(`unknown placeholder ${token}`);
    return value;
  });
}

/** A JSON deployment file, parsed with its placeholders filled. */
export function readDeployJson<T = any>(path: string): T {
  return JSON.parse(fillPlaceholders(readRepoFile(path))) as T;
}

/** Every JSON deployment file, for checks that apply to all of them. */
export const DEPLOY_JSON_FILES = [
  'task-definition.json',
  'docker/ecs/service.json',
  'docker/ecs/scaling-target.json',
  'docker/ecs/scaling-policy.json',
  'docker/ecs/task-role-policy.json',
  'docker/ecs/execution-role-policy.json',
  'docker/ecs/ecs-tasks-trust-policy.json',
  'docker/ecs/operator-policy.json',
  'docker/ecs/alarms.json',
  'docker/ecs/dashboard.json',
  'docker/ecs/backfill-task-definition.json',
  'docker/ecs/backfill-task-role-policy.json',
  'docker/ecs/backfill-schedule-rule.json',
  'docker/ecs/backfill-schedule-targets.json',
  'docker/ecs/backfill-events-role-policy.json',
  'docker/ecs/backfill-events-trust-policy.json',
] as const;
