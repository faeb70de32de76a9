/**
 * The settings each registered format declares (its codec), validated like every other setting and
 * listed in the same README table: the list of formats, and so of settings, comes from the registry.
 */
import type { FormatRegistry } from '../formats/registry.js';
import type { FormatOptions } from '../formats/types.js';
import { SettingsError, type SettingProblem } from './settings.js';

/** One row of the README table. */
export interface FormatSettingRow {
  name: string;
  default: string;
  description: string;
}

export function formatSettingRows(registry: FormatRegistry): FormatSettingRow[] {
  return registry.compressionOptions().map((option) => ({
    name: option.setting,
    default: option.choices[0]!,
    description: `${option.description}: ${option.choices.join(', ')}.`,
  }));
}

/**
 * Each format's options from the environment; unset means the format's default codec. Names are
 * matched case-insensitively. Throws a `SettingsError` listing every problem.
 */
export function loadFormatOptions(registry: FormatRegistry, env: NodeJS.ProcessEnv = process.env): Record<string, FormatOptions> {
  const options: Record<string, FormatOptions> = {};
  const problems: SettingProblem[] = [];
  for (const option of registry.compressionOptions()) {
    const raw = env[option.setting] === '' ? undefined : env[option.setting];
    const chosen = raw === undefined ? option.choices[0]! : raw.trim().toLowerCase();
    if (option.choices.includes(chosen)) options[option.format] = { compression: chosen };
    else problems.push({ setting: option.setting, value: raw, reason: `must be one of ${option.choices.join(', ')}` });
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return options;
}

/** FORMATS must name registered formats; checked once the registry is complete. */
export function checkFormatNames(formats: readonly string[], registry: FormatRegistry): void {
  const unknown = formats.filter((name) => !registry.has(name));
  if (unknown.length > 0) {
    throw new SettingsError([
      {
        setting: 'FORMATS',
        value: formats.join(','),
        reason: `unknown format${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `"${name}"`).join(', ')} (known: ${registry.names().join(', ')}; FORMAT_PLUGINS adds others)`,
      },
    ]);
  }
}
