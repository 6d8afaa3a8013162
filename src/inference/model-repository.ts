import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileProblem, SlipwayError } from '../errors/index.js';
import type { PolicyFiles } from './input-policy.js';
import { type ModelConfig, resolveModelConfig, selectVersions } from './model-config.js';

/** One model as a source describes it: its configuration and the files of the versions to serve. */
export interface ModelOnDisk {
  name: string;
  config: ModelConfig;
  /** Versions to serve, ascending, with the schema and steps that travel with each (if any). */
  versions: { version: number; path: string; policy?: PolicyFiles }[];
  /** Where requests without a version go; the highest ready version when absent. */
  defaultVersion?: number;
}

/**
 * Where models come from: a repository folder, or the registry (versions its aliases name).
 * The model manager asks its sources in order; the first that lists a name serves it.
 *
 * @example
 *   const manager = new ModelManager({ sources: [new FolderModelSource('./models')], … });
 */
export interface ModelSource {
  /** A short description for logs and the repository index (`folder ./models`, `registry`). */
  readonly label: string;
  list(): Promise<string[]>;
  /** Throws SLIPWAY_ERR_MODEL_NOT_FOUND when the source has no such model. */
  read(name: string, overrideConfig?: unknown): Promise<ModelOnDisk>;
}

/** A Triton-style repository folder: `<root>/<model>/config.json` and `<root>/<model>/<n>/model.onnx`. */
export class FolderModelSource implements ModelSource {
  readonly label: string;

  constructor(readonly root: string) {
    this.label = `folder ${root}`;
  }

  list(): Promise<string[]> {
    return listModels(this.root);
  }

  read(name: string, overrideConfig?: unknown): Promise<ModelOnDisk> {
    return readModel(this.root, name, overrideConfig);
  }
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function isValidModelName(name: string): boolean {
  return MODEL_NAME.test(name) && name.length <= 200;
}

/** Names of the model folders under the repository root. */
export async function listModels(root: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new SlipwayError(
      'SLIPWAY_ERR_CONFIG',
      `model repository ${root} cannot be read: ${fileProblem(err)}`,
    );
  }
  const names: string[] = [];
  for (const e of entries)
    if (isValidModelName(e.name) && (await isKind(root, e, 'directory'))) names.push(e.name);
  return names.sort();
}

/** Whether a folder entry is a directory (or a file), following a symbolic link to see. */
async function isKind(
  dir: string,
  e: import('node:fs').Dirent,
  kind: 'directory' | 'file',
): Promise<boolean> {
  if (kind === 'directory' ? e.isDirectory() : e.isFile()) return true;
  if (!e.isSymbolicLink()) return false;
  const target = await stat(join(dir, e.name)).catch(() => undefined);
  return kind === 'directory' ? target?.isDirectory() === true : target?.isFile() === true;
}

/** Reads one model's folder. Throws SLIPWAY_ERR_MODEL_NOT_FOUND or SLIPWAY_ERR_MODEL_LOAD. */
export async function readModel(root: string, name: string, overrideConfig?: unknown): Promise<ModelOnDisk> {
  if (!isValidModelName(name))
    throw new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `no model '${name}' in the repository`);
  const dir = join(root, name);
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    throw new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `no model '${name}' in the repository`);
  }
  let raw: unknown = overrideConfig;
  const configEntry = entries.find((e) => e.name === 'config.json');
  if (raw === undefined && configEntry && (await isKind(dir, configEntry, 'file'))) {
    const text = await readFile(join(dir, 'config.json'), 'utf8');
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        `model '${name}' config.json is not valid JSON: ${(err as Error).message}`,
      );
    }
  }
  const config = resolveModelConfig(name, raw);
  const onDisk: number[] = [];
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e.name) || !(await isKind(dir, e, 'directory'))) continue;
    const v = Number(e.name);
    if (v >= 1 && Number.isSafeInteger(v)) onDisk.push(v);
  }
  if (onDisk.length === 0) {
    throw new SlipwayError(
      'SLIPWAY_ERR_MODEL_LOAD',
      `model '${name}' has no version folders (expected ${dir}/<n>/model.onnx)`,
    );
  }
  const selected = selectVersions(config.versionPolicy, onDisk);
  if (selected.length === 0) {
    throw new SlipwayError(
      'SLIPWAY_ERR_MODEL_LOAD',
      `model '${name}': the version policy selects none of the versions on disk (${onDisk.sort((a, b) => a - b).join(', ')})`,
    );
  }
  const versions = [];
  for (const v of selected) {
    const path = join(dir, String(v), 'model.onnx');
    const policy = await readPolicyFiles(name, join(dir, String(v)), dir);
    versions.push(policy ? { version: v, path, policy } : { version: v, path });
  }
  return { name, config, versions };
}

/**
 * A version's `schema.json` and `steps.json`: in its own folder, else beside config.json (for
 * every version). Undefined when there are none.
 */
async function readPolicyFiles(
  name: string,
  versionDir: string,
  modelDir: string,
): Promise<PolicyFiles | undefined> {
  const files: PolicyFiles = {};
  for (const key of ['schema', 'steps'] as const) {
    for (const dir of [versionDir, modelDir]) {
      const path = join(dir, `${key}.json`);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new SlipwayError(
          'SLIPWAY_ERR_MODEL_LOAD',
          `model '${name}' ${path} cannot be read: ${fileProblem(err)}`,
        );
      }
      try {
        files[key] = JSON.parse(text);
      } catch (err) {
        throw new SlipwayError(
          'SLIPWAY_ERR_MODEL_LOAD',
          `model '${name}' ${path} is not valid JSON: ${(err as Error).message}`,
        );
      }
      break;
    }
  }
  return files.schema === undefined && files.steps === undefined ? undefined : files;
}

/** Throws a clear load error when the file is absent or empty, before ONNX Runtime sees it. */
export async function checkModelFile(path: string): Promise<void> {
  let s: import('node:fs').Stats;
  try {
    s = await stat(path);
  } catch {
    throw new SlipwayError('SLIPWAY_ERR_MODEL_LOAD', `model file ${path} does not exist`);
  }
  if (!s.isFile() || s.size === 0)
    throw new SlipwayError('SLIPWAY_ERR_MODEL_LOAD', `model file ${path} is empty or not a file`);
}
