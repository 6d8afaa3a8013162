export { createInputPolicy } from './input-policy.js';
export {
  RegistryModelSource,
  RegistryWatcher,
  type ServingCatalog,
  type ServingView,
} from './registry-model-source.js';
