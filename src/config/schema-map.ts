/**
 * `SCHEMA_MAP`: which pinned-schema file applies to which source-key prefix. The setting is either
 * the map itself, inline JSON, or where to read that JSON from; both forms pass the same schema.
 */
import { z } from 'zod';
import { s3ObjectUriProblem } from './s3-names.js';

/** A schema file: an `s3://bucket/key` URI or a local path. */
const schemaFileLocation = z
  .string({ error: 'must be a string (a path or s3:// URI)' })
  .min(1, 'must not be empty')
  .superRefine((location, ctx) => {
    const problem = location.startsWith('s3://') ? s3ObjectUriProblem(location) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** The map's shape: `{ "key/prefix/": "s3://bucket/schema.json" | "/path/schema.json" }`. */
export const schemaMapEntries = z.record(z.string(), schemaFileLocation, {
  error: 'must be a JSON object of key prefix → schema file (path or s3:// URI)',
});

export type SchemaMapEntries = Record<string, string>;

/** The setting as given: the entries themselves, or where the service reads them from at start-up. */
export type SchemaMapSetting = { kind: 'inline'; entries: SchemaMapEntries } | { kind: 'location'; location: string };

/** Validates map JSON from any source; throws an Error naming `origin` and every problem. */
export function parseSchemaMapJson(text: string, origin: string): SchemaMapEntries {
  const result = schemaMapJson.safeParse(text);
  if (!result.success) throw new Error(`${origin}: ${describeIssues(result.error.issues).join('; ')}`);
  return result.data;
}

const schemaMapJson = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(error as Error).message})` });
      return z.NEVER;
    }
  })
  .pipe(schemaMapEntries);

/** The `SCHEMA_MAP` value: JSON when it starts with `{`, otherwise a path or s3:// URI of a JSON file. */
export const schemaMapSetting = z
  .string()
  .trim()
  .transform((text, ctx): SchemaMapSetting => {
    const inline = text.startsWith('{');
    const result = inline ? schemaMapJson.safeParse(text) : schemaFileLocation.safeParse(text);
    if (!result.success) {
      for (const message of describeIssues(result.error.issues)) ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    return inline
      ? { kind: 'inline', entries: result.data as SchemaMapEntries }
      : { kind: 'location', location: result.data as string };
  });

/** Issue messages, each naming the map entry it is about. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => (issue.path.length > 0 ? `entry ${JSON.stringify(String(issue.path[0]))} ${issue.message}` : issue.message));
}
