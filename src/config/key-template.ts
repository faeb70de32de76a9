/**
 * The output key template (`OUTPUT_KEY_TEMPLATE`): which placeholders exist, what makes a template
 * safe to use, and how one is filled in. Validation and rendering share this one definition.
 */
import { stemOf } from '../events/keys.js';

export const KEY_TEMPLATE_PLACEHOLDERS = ['prefix', 'format', 'stem', 'ext', 'bucket'] as const;
export type KeyTemplatePlaceholder = (typeof KEY_TEMPLATE_PLACEHOLDERS)[number];

/** What each placeholder stands for, for the settings table. */
export const KEY_TEMPLATE_MEANINGS: Record<KeyTemplatePlaceholder, string> = {
  prefix: 'OUTPUT_PREFIX',
  format: 'the format name',
  stem: 'the source key without `.csv`/`.csv.gz`',
  ext: 'the format’s file extension',
  bucket: 'the source bucket',
};

const TOKEN = /\{([^{}]*)\}/g;

/** Every reason the template is unusable; empty when it is fine. */
export function keyTemplateProblems(template: string): string[] {
  const problems: string[] = [];
  const known = new Set<string>(KEY_TEMPLATE_PLACEHOLDERS);
  const used = new Set<string>();
  const unknown: string[] = [];
  for (const match of template.matchAll(TOKEN)) {
    if (known.has(match[1])) used.add(match[1]);
    else unknown.push(`{${match[1]}}`);
  }
  if (unknown.length > 0) {
    problems.push(`unknown placeholder ${unknown.join(', ')} (known: ${KEY_TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
  }
  // A brace left after removing every {…} token is unbalanced, almost always a typo.
  if (/[{}]/.test(template.replace(TOKEN, ''))) problems.push('has an unmatched { or }');
  // Without {stem} every source writes the same key; without {ext} or {format} the formats overwrite each other.
  if (!used.has('stem')) problems.push('must contain {stem}');
  if (!used.has('ext') && !used.has('format')) problems.push('must contain {ext} or {format}');
  if (template.startsWith('/')) problems.push('must not start with "/" (S3 keys have no leading slash)');
  return problems;
}

/** Fills in a template that passed `keyTemplateProblems`. */
export function renderKeyTemplate(template: string, values: Readonly<Record<KeyTemplatePlaceholder, string>>): string {
  return template.replace(TOKEN, (token, name: string) =>
    Object.hasOwn(values, name) ? values[name as KeyTemplatePlaceholder] : token,
  );
}

/** The settings that decide where a source's outputs go: OUTPUT_PREFIX, OUTPUT_KEY_TEMPLATE and FORMATS. */
export interface OutputLayout {
  prefix: string;
  template: string;
  /** Format name and file extension, in output order. */
  formats: readonly { name: string; extension: string }[];
}

/**
 * The output key of each format (in `layout.formats` order) for a source object: the one rule
 * that `serve` writes by and `backfill` looks for.
 */
export function outputKeysFor(layout: OutputLayout, source: { bucket: string; key: string }): string[] {
  const stem = stemOf(source.key);
  return layout.formats.map((format) =>
    renderKeyTemplate(layout.template, { prefix: layout.prefix, format: format.name, stem, ext: format.extension, bucket: source.bucket }),
  );
}

/**
 * What every output key of `format` for sources in `sourceBucket` starts with: the template
 * rendered up to its first `{stem}`. Listing this prefix finds all of them.
 */
export function outputKeyPrefixFor(layout: OutputLayout, format: { name: string; extension: string }, sourceBucket: string): string {
  const head = layout.template.slice(0, Math.max(0, layout.template.indexOf('{stem}')));
  return renderKeyTemplate(head, { prefix: layout.prefix, format: format.name, stem: '', ext: format.extension, bucket: sourceBucket });
}
