/** The registry's public types: what its methods take and return. */
import type { Readable } from 'node:stream';
import type { DatasetRef } from './names.js';
import type { ModelSignature } from './onnx-signature.js';
import type { SearchCondition, SearchOrder } from './search.js';

export interface RegisteredModel {
  name: string;
  description: string;
  tags: Record<string, string>;
  creator: string;
  createdMs: number;
  updatedMs: number;
  /** Highest READY version; null before the first. */
  latestVersion: number | null;
  /** READY versions. */
  versionCount: number;
  /** Alias → version. */
  aliases: Record<string, number>;
}

export type VersionStatus = 'PENDING_REGISTRATION' | 'READY' | 'FAILED_REGISTRATION';

/** MLflow's deprecated stages, kept for its clients; aliases are the way to point at versions. */
export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type Stage = (typeof STAGES)[number];

export interface ModelVersion {
  name: string;
  version: number;
  status: VersionStatus;
  description: string;
  tags: Record<string, string>;
  metrics: Record<string, number>;
  /** Where the model came from, as given: `file:///…/model.onnx`, `models:/m-…`, `runs:/…`. */
  source: string;
  runId: string | null;
  runLink: string | null;
  /** The MLflow logged model the version was registered from. */
  loggedModelId: string | null;
  stage: Stage;
  /** The version's immutable folder in the artifact store: `registry/<name>/<version>`. */
  artifactPath: string;
  /** The ONNX file inside it (path from the artifact store root), or null when the folder holds none. */
  modelFile: { path: string; sha256: string; size: number } | null;
  signature: ModelSignature | null;
  trainingData: DatasetRef[];
  evaluationData: DatasetRef[];
  aliases: string[];
  creator: string;
  createdMs: number;
  updatedMs: number;
}

export interface CreateVersionInput {
  name: string;
  /**
   * The model: the bytes of one ONNX file (stored as `model.onnx`, or `fileName`), or a folder
   * already in the artifact store (an MLflow logged model's) whose files are linked, not copied.
   */
  content: { file: Readable | Uint8Array; fileName?: string } | { folder: string };
  /** Registers the model first when it does not exist (the CLI's push). */
  createModel?: boolean;
  description?: string;
  tags?: Record<string, string>;
  metrics?: Record<string, number>;
  source?: string;
  runId?: string;
  runLink?: string;
  loggedModelId?: string;
  /** `name@version` of a dataset, or a URI. */
  trainingData?: string[];
  evaluationData?: string[];
  /** Aliases to point at the new version once it is READY. */
  aliases?: string[];
  /** Serving settings (config.json fields), stored as the version's `config.json`. */
  config?: Record<string, unknown>;
  /**
   * Further JSON files stored beside the model, by name: `schema.json` (checked on every
   * request) and fitted `steps.json` (run before the model). The caller validates them.
   */
  jsonFiles?: Record<string, unknown>;
}

export interface VersionUpdate {
  description?: string;
  /** A value sets the tag; null deletes it. */
  tags?: Record<string, string | null>;
}

export interface ModelUpdate {
  description?: string;
  tags?: Record<string, string | null>;
}

export interface AliasInfo {
  alias: string;
  version: number;
  updatedMs: number;
  updatedBy: string;
}

/** One alias change: set (from null), moved, or deleted (to null). */
export interface AliasMove {
  seq: number;
  model: string;
  alias: string;
  fromVersion: number | null;
  toVersion: number | null;
  actor: string;
  atMs: number;
}

/**
 * An entry of the audit log. `seq` increases by one with every change, across replicas, and is
 * the cursor of `changesSince`.
 */
export interface AuditEntry {
  seq: number;
  atMs: number;
  actor: string;
  /** `model.create`, `version.create`, `alias.set`, `card.update`, … (see docs/registry.md). */
  action: string;
  /** `model:<name>`, `version:<name>/<n>`, `alias:<name>@<alias>`, `card:<name>`. */
  target: string;
  model: string | null;
  version: number | null;
  alias: string | null;
  details: Record<string, unknown>;
}

export interface AuditQuery {
  model?: string;
  actor?: string;
  /** An action (`alias.set`) or a family ending in `.*` (`alias.*`). */
  action?: string;
  sinceMs?: number;
  untilMs?: number;
  /** Entries older than this sequence number (the `next` of the previous page). */
  beforeSeq?: number;
  /** At most 1000; default 100. */
  limit?: number;
}

export interface SearchOptions {
  conditions?: readonly SearchCondition[];
  orderBy?: readonly SearchOrder[];
  maxResults?: number;
  pageToken?: string;
}

/** What serving needs of a registered model: the files of its READY versions and its aliases. */
export interface ServingView {
  name: string;
  /** alias → version. */
  aliases: Record<string, number>;
  /** Ascending; only READY versions holding an ONNX file. */
  versions: ServingVersion[];
  /**
   * The `config.json` (Triton-style serving settings) of the version serving answers with by
   * default (the serving alias's, else the latest), if that version carries one.
   */
  config?: unknown;
}

export interface ServingVersion {
  version: number;
  /** A local file ONNX Runtime can open (remote blob stores download it once, on first call). */
  file: () => Promise<string>;
  /** The version's `schema.json` and `steps.json`, where it carries them (parsed JSON). */
  extras: () => Promise<{ schema?: unknown; steps?: unknown }>;
  sha256: string;
  size: number;
  signature: ModelSignature | null;
}

/**
 * The registry as serving reads it (the shape of `ServingCatalog` in src/serving): model names,
 * one model's view, and which models changed, in this process or on another replica.
 */
export interface RegistryServingCatalog {
  /** Registered models with at least one READY version that holds an ONNX file. */
  modelNames(): Promise<string[]>;
  /** Undefined when no such registered model exists. */
  view(name: string): Promise<ServingView | undefined>;
  /** Called with a model's name after each change to it through this process (both names on a rename). */
  onChange(listener: (name: string) => void): () => void;
  /**
   * Models changed after `cursor`, and the cursor to pass next time. A cursor beyond the last
   * change (e.g. `Number.MAX_SAFE_INTEGER`) returns no names and the current cursor.
   */
  changesSince(cursor: number): Promise<{ names: string[]; cursor: number }>;
}

export interface DatasetUsage {
  model: string;
  version: number;
  role: 'training' | 'evaluation';
  dataset: DatasetRef;
}

export interface RegistryOptions {
  /** The alias serving follows; the model card shows the signature of its version. */
  servingAlias?: string;
  /**
   * Whether the store holds the dataset version a reference names (`adult@3`, `adult`). Given, a
   * lineage entry must name one (a typo is refused, not kept as lineage to nothing); data kept
   * elsewhere is named by URI.
   */
  datasetExists?: (ref: string) => Promise<boolean>;
}
