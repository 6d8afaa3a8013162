export { type LevelledLogger, type LogSettingValues, levelFor, logSettingsOf } from './log-settings.js';
export {
  DEFAULT_SETTINGS,
  ENV_NAMES,
  loadSettings,
  type Settings,
  type SettingsSources,
} from './settings.js';
