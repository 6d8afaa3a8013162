export {
  DEFAULT_SETTINGS,
  ENV_NAMES,
  loadSettings,
  type Settings,
  type SettingsSources,
} from './settings.js';
