export {
  RegistryModelSource,
  RegistryWatcher,
  type ServingCatalog,
  type ServingView,
} from './registry-model-source.js';
