/**
 * Which dataset a source key belongs to (SCHEMA_DATASET): the files of one dataset share one
 * registered schema. Plain data, so a rule travels to a worker thread as it is.
 */

export type DatasetRule =
  /** The key's folder: `sales/2024/05/a.csv` → `sales/2024/05`. */
  | { kind: 'folder' }
  /** The first `depth` folders of the key: with 1, `sales/2024/05/a.csv` → `sales`. */
  | { kind: 'depth'; depth: number }
  /** A regular expression over the key: its first capture group, or the whole match without one. */
  | { kind: 'regex'; source: string };

export const DEFAULT_DATASET_RULE: DatasetRule = { kind: 'folder' };

export const MAX_DATASET_DEPTH = 100;

/** What the setting accepts, for messages and the README. */
export const DATASET_RULE_FORMS = '`folder`, `depth:N` (N from 1 to 100) or `regex:PATTERN`';

/** Reads `folder`, `depth:N` or `regex:PATTERN`; throws an Error saying what is wrong. */
export function parseDatasetRule(text: string): DatasetRule {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'folder') return { kind: 'folder' };
  const depth = /^depth:(.*)$/i.exec(trimmed);
  if (depth) {
    const n = Number(depth[1]);
    if (!/^\d+$/.test(depth[1]!.trim()) || n < 1 || n > MAX_DATASET_DEPTH) {
      throw new Error(`depth must be a whole number from 1 to ${MAX_DATASET_DEPTH}, e.g. depth:1`);
    }
    return { kind: 'depth', depth: n };
  }
  // The pattern is taken as written after the colon: spaces may be part of it.
  const regex = /^regex:/i.exec(text.trimStart());
  if (regex) {
    const source = text.trimStart().slice(regex[0].length);
    if (source === '') throw new Error('regex: needs a pattern, e.g. regex:^([^/]+)/');
    try {
      new RegExp(source);
    } catch (error) {
      throw new Error(`the pattern is not a valid regular expression (${(error as Error).message})`);
    }
    return { kind: 'regex', source };
  }
  throw new Error(`must be ${DATASET_RULE_FORMS}`);
}

/** The rule as the user would write it, for logs and `schema show`. */
export function describeDatasetRule(rule: DatasetRule): string {
  if (rule.kind === 'folder') return 'folder';
  if (rule.kind === 'depth') return `depth:${rule.depth}`;
  return `regex:${rule.source}`;
}

const compiled = new Map<string, RegExp>();

/**
 * The dataset of `key`, without leading or trailing slashes ('' is the bucket's root folder), or
 * undefined when a `regex` rule does not match: such a file belongs to no dataset and keeps the
 * types inferred from it.
 */
export function datasetOf(rule: DatasetRule, key: string): string | undefined {
  const folders = key.split('/').slice(0, -1);
  if (rule.kind === 'folder') return trimSlashes(folders.join('/'));
  if (rule.kind === 'depth') return trimSlashes(folders.slice(0, rule.depth).join('/'));
  let pattern = compiled.get(rule.source);
  if (!pattern) {
    pattern = new RegExp(rule.source);
    compiled.set(rule.source, pattern);
  }
  const match = pattern.exec(key);
  if (!match) return undefined;
  return trimSlashes(match.length > 1 ? (match[1] ?? '') : match[0]);
}

function trimSlashes(text: string): string {
  return text.replace(/^\/+|\/+$/g, '');
}
