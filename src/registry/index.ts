/**
 * The model registry: registered models, immutable versions, aliases, model cards, audit log
 * and change notification for serving. See docs/registry.md.
 */
export {
  CARD_SECTION_KEYS,
  CARD_SECTIONS,
  type CardFacts,
  type CardSectionKey,
  type CardSections,
  escapeHtml,
  type ModelCard,
  renderCardHtml,
  renderCardMarkdown,
  sectionKey,
} from './model-card.js';
export {
  checkAlias,
  checkModelName,
  type DatasetRef,
  parseDatasetRef,
  parseMetricPairs,
  parseTagPairs,
} from './names.js';
export { type ModelSignature, readOnnxSignature, type SignatureTensor } from './onnx-signature.js';
export { canonicalStage, Registry } from './registry.js';
export { type RegistryTables, registryMigrations } from './registry-migrations.js';
export {
  type AliasInfo,
  type AliasMove,
  type AuditEntry,
  type AuditQuery,
  type CreateVersionInput,
  type DatasetUsage,
  type ModelUpdate,
  type ModelVersion,
  type RegisteredModel,
  type RegistryOptions,
  type RegistryServingCatalog,
  type SearchOptions,
  type ServingVersion,
  type ServingView,
  STAGES,
  type Stage,
  type VersionStatus,
  type VersionUpdate,
} from './registry-types.js';
export {
  type Comparator,
  parseFilter,
  parseOrderBy,
  type SearchCondition,
  type SearchOrder,
  type SearchTarget,
} from './search.js';
