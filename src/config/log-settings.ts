/**
 * Triton's logging extension over a pino logger: the settings Triton's clients read and change at
 * run time (`GET`/`POST /v2/logging`, gRPC `LogSettings`), mapped onto the logger's level. Pino's
 * levels are thresholds, so the switches must describe one: errors, then warnings, then info, then
 * verbose levels (1 is debug, 2 and more are trace).
 */
import { describeValue, SlipwayError } from '../errors/index.js';

/** The settings as Triton names them. */
export interface LogSettingValues {
  log_file: string;
  log_info: boolean;
  log_warnings: boolean;
  log_errors: boolean;
  log_verbose_level: number;
  log_format: string;
}

/** The part of a pino logger the settings change. */
export interface LevelledLogger {
  level: string;
}

const bad = (message: string) => new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);

const NAMES: readonly (keyof LogSettingValues)[] = [
  'log_file',
  'log_info',
  'log_warnings',
  'log_errors',
  'log_verbose_level',
  'log_format',
];

/** The settings a logger's level stands for. */
export function logSettingsOf(logger: LevelledLogger): LogSettingValues {
  const rank = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].indexOf(logger.level);
  const at = rank < 0 ? 2 : rank;
  return {
    log_file: '',
    log_info: at <= 2,
    log_warnings: at <= 3,
    log_errors: at <= 4,
    log_verbose_level: at === 0 ? 2 : at === 1 ? 1 : 0,
    log_format: 'default',
  };
}

/**
 * The level a change of settings asks for from the level now, checked: only the settings Triton
 * defines, each of its type; the log stays on standard error (`log_file` ""), as JSON lines
 * (`log_format` "default"); and the switches describe a threshold. A change that leaves the
 * settings as they are keeps the level (`fatal`, which the switches cannot tell from `silent`).
 */
export function levelFor(level: string, patch: unknown): string {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw bad('log settings must be a JSON object of setting: value');
  }
  const current = logSettingsOf({ level });
  const next = { ...current };
  for (const [name, value] of Object.entries(patch)) {
    if (!NAMES.includes(name as keyof LogSettingValues)) {
      throw bad(`unknown log setting '${name}'; the settings are ${NAMES.join(', ')}`);
    }
    const key = name as keyof LogSettingValues;
    if (key === 'log_file' || key === 'log_format') {
      if (typeof value !== 'string') throw bad(`'${key}' must be a string, got ${describeValue(value)}`);
      if (key === 'log_file' && value !== '') {
        throw bad('\'log_file\' must be "": the log goes to standard error; redirect it from there');
      }
      if (key === 'log_format' && value !== 'default') {
        throw bad(`'log_format' must be "default" (JSON lines), got ${JSON.stringify(value)}`);
      }
    } else if (key === 'log_verbose_level') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw bad(`'log_verbose_level' must be an integer >= 0, got ${describeValue(value)}`);
      }
      next.log_verbose_level = value;
    } else {
      if (typeof value !== 'boolean')
        throw bad(`'${key}' must be true or false, got ${describeValue(value)}`);
      next[key] = value;
    }
  }
  if (next.log_verbose_level > 0 && !next.log_info) {
    throw bad("'log_verbose_level' above 0 needs 'log_info': levels are thresholds here");
  }
  if (next.log_info && !next.log_warnings) throw bad("'log_warnings' cannot be off while 'log_info' is on");
  if (next.log_warnings && !next.log_errors)
    throw bad("'log_errors' cannot be off while 'log_warnings' is on");
  if (NAMES.every((n) => next[n] === current[n])) return level;
  if (next.log_verbose_level >= 2) return 'trace';
  if (next.log_verbose_level === 1) return 'debug';
  if (next.log_info) return 'info';
  if (next.log_warnings) return 'warn';
  if (next.log_errors) return 'error';
  return 'silent';
}
