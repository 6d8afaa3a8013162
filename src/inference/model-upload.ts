import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SlipwayError } from '../errors/index.js';
import { isValidModelName } from './model-repository.js';
import type { Parameters } from './types.js';

/**
 * A model folder written from the files of a load request (Triton's `file:<version>/<name>`
 * parameters): `<root>/<model>/…`, read like a repository folder. `owned` says whether this
 * process removes it once nothing it serves came from it; a serving process that loads another
 * process's upload leaves it to that one.
 */
export interface UploadedModel {
  root: string;
  owned: boolean;
}

const FILE_PREFIX = 'file:';
/** More files than any model folder has; it bounds the work one request can ask for. */
const MAX_FILES = 1000;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** True when the load request carries model files. */
export function hasUploadedFiles(parameters: Parameters | undefined): boolean {
  if (parameters === undefined) return false;
  for (const key of Object.keys(parameters)) if (key.startsWith(FILE_PREFIX)) return true;
  return false;
}

/** The parameters without the files: what a load repeated elsewhere needs once they are on disk. */
export function withoutUploadedFiles(parameters: Parameters): Parameters {
  const rest: Parameters = {};
  for (const [key, value] of Object.entries(parameters)) if (!key.startsWith(FILE_PREFIX)) rest[key] = value;
  return rest;
}

/**
 * Checks and decodes the `file:` parameters of a load request: relative paths inside the model
 * folder, base64 contents, and a `config` beside them (the uploaded folder replaces the model's
 * own, so its config.json does not apply). Throws a 400 naming the parameter.
 */
export function readUploadedFiles(model: string, parameters: Parameters): Map<string, Buffer> {
  if (!isValidModelName(model)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `model name '${model}' cannot take uploaded files: use letters, digits, '_', '.' and '-' (not first), at most 200 characters`,
    );
  }
  if (parameters.config === undefined) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      "parameter 'config' is required with 'file:' parameters: the uploaded files replace the model's folder, config.json included (give '{}' for the defaults)",
    );
  }
  const files = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(parameters)) {
    if (!key.startsWith(FILE_PREFIX)) continue;
    const path = key.slice(FILE_PREFIX.length);
    checkRelativePath(key, path);
    if (path === 'config.json') {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `parameter '${key}': give the model's configuration as parameter 'config'`,
      );
    }
    if (typeof value !== 'string' || value.length % 4 !== 0 || !BASE64.test(value)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `parameter '${key}' must be the file's contents in base64, got ${typeof value === 'string' ? 'a string that is not base64' : typeof value}`,
      );
    }
    files.set(path, Buffer.from(value, 'base64'));
    if (files.size > MAX_FILES) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `a load request carries at most ${MAX_FILES} 'file:' parameters`,
      );
    }
  }
  for (const path of files.keys()) {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const folder = path.slice(0, i);
      if (files.has(folder)) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `parameters 'file:${folder}' and 'file:${path}': '${folder}' cannot be both a file and a folder`,
        );
      }
    }
  }
  return files;
}

/** `1/model.onnx`, `labels.txt`: segments that stay inside the folder on every platform. */
function checkRelativePath(key: string, path: string): void {
  const segments = path.split('/');
  const bad = segments.find(
    (s) =>
      s === '' ||
      s === '.' ||
      s === '..' ||
      s.includes('\\') ||
      s.includes('\0') ||
      Buffer.byteLength(s) > 255 ||
      // A lone surrogate: two such names would be written as the same file.
      Buffer.from(s, 'utf8').toString('utf8') !== s,
  );
  if (bad !== undefined || path.length > 1024) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `parameter '${key}': the file must be a relative path inside the model's folder, such as 'file:1/model.onnx' (no empty, '.' or '..' segments, no backslashes, names of at most 255 bytes of valid UTF-8)`,
    );
  }
}

/**
 * Writes the files into a fresh folder under the system's temporary directory (`TMPDIR`):
 * `<root>/<model>/<path>`. Every folder on the way is created here, and files are created
 * exclusively, so nothing is written through a link or outside the root.
 */
export async function writeUploadedModel(model: string, files: Map<string, Buffer>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'slipway-upload-'));
  try {
    const dir = join(root, model);
    await mkdir(dir);
    for (const [path, bytes] of files) {
      const target = join(dir, path);
      try {
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, bytes, { flag: 'wx' });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Names the file system cannot hold apart (case-insensitive ones) or at all.
        if (
          code === 'EEXIST' ||
          code === 'ENOTDIR' ||
          code === 'EISDIR' ||
          code === 'ENAMETOOLONG' ||
          code === 'EILSEQ'
        ) {
          throw new SlipwayError(
            'SLIPWAY_ERR_BAD_REQUEST',
            `parameter 'file:${path}' cannot be written in the model's folder (${code}): another file has that name here, or the name is too long`,
          );
        }
        throw err;
      }
    }
    return root;
  } catch (err) {
    await removeUploadedModel(root);
    if (err instanceof SlipwayError) throw err;
    throw new SlipwayError(
      'SLIPWAY_ERR_STORAGE_UNAVAILABLE',
      `the uploaded files of model '${model}' could not be written: ${(err as Error).message}`,
    );
  }
}

export function removeUploadedModel(root: string): Promise<void> {
  return rm(root, { recursive: true, force: true });
}
