/**
 * Renders the settings table from the same definitions that validate the environment, and keeps
 * the README's copy of it current: `--write README.md` rewrites the block, `--check README.md`
 * exits 1 when it differs, `--print` writes the table to stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describeDefault, SETTING_DEFINITIONS } from '../config/settings.js';
import { formatSettingRows } from '../config/format-settings.js';
import { registerBuiltinFormats } from '../formats/builtin.js';
import { FormatRegistry } from '../formats/registry.js';

export const SETTINGS_START = '<!-- settings:start -->';
export const SETTINGS_END = '<!-- settings:end -->';

/**
 * The markdown table: Setting | Default | Meaning, one row per setting, in definition order, with
 * the settings of the built-in formats after FORMAT_PLUGINS (formats a plugin adds declare theirs
 * the same way, see docs/ARCHITECTURE.md).
 */
export function settingsTable(): string {
  const rows: string[] = [];
  for (const d of SETTING_DEFINITIONS) {
    rows.push(`| \`${d.name}\` | ${cell(describeDefault(d))} | ${cell(d.description)} |`);
    if (d.name === 'FORMAT_PLUGINS') {
      for (const row of formatSettingRows(registerBuiltinFormats(new FormatRegistry()))) {
        rows.push(`| \`${row.name}\` | \`${row.default}\` | ${cell(row.description)} |`);
      }
    }
  }
  return ['| Setting | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}

// A `|` inside a cell would end it, even inside backticks.
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The text between the markers, trimmed; throws when the markers are missing or out of order. */
export function readSettingsBlock(readme: string, origin = 'README'): string {
  const { start, end } = markers(readme, origin);
  return readme.slice(start + SETTINGS_START.length, end).trim();
}

/** `readme` with the block between the markers replaced by `table`. */
export function replaceSettingsBlock(readme: string, table: string, origin = 'README'): string {
  const { start, end } = markers(readme, origin);
  return `${readme.slice(0, start + SETTINGS_START.length)}\n${table}\n${readme.slice(end)}`;
}

function markers(readme: string, origin: string): { start: number; end: number } {
  const start = readme.indexOf(SETTINGS_START);
  const end = readme.indexOf(SETTINGS_END);
  if (start < 0 || end < 0 || end < start) {
    throw new Error(`${origin} has no settings block: add a line ${SETTINGS_START} and, below it, a line ${SETTINGS_END}`);
  }
  return { start, end };
}

function main(args: string[]): number {
  const [mode, file] = args;
  if (mode === '--print') {
    process.stdout.write(`${settingsTable()}\n`);
    return 0;
  }
  if ((mode !== '--write' && mode !== '--check') || !file) {
    process.stderr.write('usage: settings-doc (--write | --check) README.md | --print\n');
    return 2;
  }
  const readme = readFileSync(file, 'utf8');
  const table = settingsTable();
  if (mode === '--write') {
    const updated = replaceSettingsBlock(readme, table, file);
    if (updated !== readme) writeFileSync(file, updated);
    return 0;
  }
  if (readSettingsBlock(readme, file) === table) return 0;
  process.stderr.write(`${file}: the settings table is out of date; run: node dist/src/cli/settings-doc.js --write ${file}\n`);
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}
