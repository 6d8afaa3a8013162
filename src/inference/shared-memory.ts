/**
 * Triton's system shared memory extension: a client on the same host creates a POSIX shared
 * memory object (`shm_open`, which Linux keeps as a file under /dev/shm), registers a region of
 * it by name, and then sends inputs, or asks for outputs, as `shared_memory_region`,
 * `shared_memory_byte_size` and optional `shared_memory_offset` parameters instead of data.
 * Both transports read and write the same regions; registration is the data plane's (every
 * serving process registers a region, see ClusterDataPlane).
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describeValue, SlipwayError } from '../errors/index.js';
import { fromBytes, toBytes } from './datatypes.js';
import type { InferRequest, InferResponse, Parameters, Tensor } from './types.js';

/** A registered region: `byteSize` bytes from `offset` in the shared memory object `key`. */
export interface SharedMemoryRegion {
  name: string;
  key: string;
  offset: number;
  byteSize: number;
}

/** Where one tensor's bytes are: `byteSize` bytes from `offset` in a registered region. */
export interface SharedMemoryRef {
  region: string;
  offset: number;
  byteSize: number;
}

/** Where Linux keeps POSIX shared memory objects. */
export const SHM_ROOT = '/dev/shm';

const bad = (message: string) => new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Most regions registered at once: each holds an open object, and the process has few to spare. */
export const MAX_REGIONS = 1024;

export interface SharedMemoryOptions {
  /** Whether clients may register regions (`--allow-client-shm`); off, as in Triton. */
  allowed: boolean;
  /** Folder of the shared memory objects (default /dev/shm). */
  root?: string;
}

/**
 * The regions clients registered. Each object is opened once, for reading and writing, however
 * many regions it holds, and closed with the last of them.
 */
export class SharedMemoryRegions {
  private readonly regions = new Map<string, { region: SharedMemoryRegion; fd: number; object: string }>();
  /**
   * Open objects by identity (device and inode): an object unlinked and created again under the
   * same key is a new object, and gets its own file.
   */
  private readonly objects = new Map<string, { fd: number; regions: number }>();

  constructor(private readonly options: SharedMemoryOptions) {}

  get allowed(): boolean {
    return this.options.allowed;
  }

  /** Registered regions: 0 lets a request skip every shared memory check. */
  get size(): number {
    return this.regions.size;
  }

  /**
   * Opens the object `key` and keeps the region. Fails naming the field when the name is taken,
   * the object does not exist, or the region runs past the object's end.
   */
  register(region: SharedMemoryRegion): void {
    if (!this.options.allowed) {
      throw bad(
        'registering shared memory is off on this server; start it with --allow-client-shm (or SLIPWAY_ALLOW_CLIENT_SHM=true) to allow clients on this host to',
      );
    }
    const { name, key, offset, byteSize } = region;
    if (typeof name !== 'string' || name === '') throw bad("'name' must be a non-empty region name");
    if (typeof key !== 'string') throw bad(`'key' must be a string, got ${describeValue(key)}`);
    const file = key.startsWith('/') ? key.slice(1) : key;
    if (file === '' || file === '.' || file === '..' || file.includes('/') || file.includes('\0')) {
      throw bad(`'key' ${JSON.stringify(key)} is not a shared memory object name (one '/' then no other)`);
    }
    if (!isCount(offset)) throw bad(`'offset' must be a non-negative integer, got ${describeValue(offset)}`);
    if (!isCount(byteSize) || byteSize === 0) {
      throw bad(`'byte_size' must be a positive integer, got ${describeValue(byteSize)}`);
    }
    if (this.regions.has(name)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_ALREADY_EXISTS',
        `shared memory region '${name}' is already registered; unregister it first`,
      );
    }
    if (this.regions.size >= MAX_REGIONS) {
      throw bad(
        `${MAX_REGIONS} shared memory regions are registered, the most this server keeps; unregister some first`,
      );
    }
    const fd = this.open(file, key);
    const stat = fstatSync(fd);
    const id = `${stat.dev}:${stat.ino}`;
    const held = this.objects.get(id);
    if (held) closeSync(fd); // the same object is open already
    if (offset + byteSize > stat.size) {
      if (!held) closeSync(fd);
      throw bad(
        `region '${name}': offset ${offset} + byte_size ${byteSize} runs past the end of '${key}' (${stat.size} bytes)`,
      );
    }
    const object = held ?? { fd, regions: 0 };
    object.regions++;
    this.objects.set(id, object);
    this.regions.set(name, { region: { name, key, offset, byteSize }, fd: object.fd, object: id });
  }

  /**
   * Opens an object for reading and writing. A symbolic link is refused (as `shm_open` refuses
   * one), so a link placed in the folder cannot point the server at another file.
   */
  private open(file: string, key: string): number {
    const path = join(this.options.root ?? SHM_ROOT, file);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'does not exist (create it with shm_open first)'
          : code === 'EACCES'
            ? 'cannot be opened for reading and writing by the server'
            : code === 'ELOOP'
              ? 'is a symbolic link, not a shared memory object'
              : `cannot be opened (${code ?? (err as Error).message})`;
      throw bad(`shared memory object '${key}' ${why}`);
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw bad(`shared memory object '${key}' is not a memory object`);
    }
    return fd;
  }

  /** Forgets one region, or every region when no name is given; an unknown name is no error. */
  unregister(name?: string): void {
    for (const [n, r] of this.regions) {
      if (name !== undefined && n !== name) continue;
      this.regions.delete(n);
      const object = this.objects.get(r.object)!;
      if (--object.regions === 0) {
        this.objects.delete(r.object);
        closeSync(object.fd);
      }
    }
  }

  /** Objects held open (one per object, whatever the number of regions in it). */
  get openObjects(): number {
    return this.objects.size;
  }

  /** Every region, or the one named (an unknown name is a 400). */
  status(name?: string): SharedMemoryRegion[] {
    if (name === undefined) return [...this.regions.values()].map((r) => ({ ...r.region }));
    const r = this.regions.get(name);
    if (!r) {
      throw new SlipwayError(
        'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
        `no shared memory region '${name}' is registered`,
      );
    }
    return [{ ...r.region }];
  }

  /** Checks a tensor's reference against its region before anything is computed. */
  check(ref: SharedMemoryRef, what: string): void {
    this.find(ref, what);
  }

  /** The referenced bytes (a copy, in a buffer of their own). */
  read(ref: SharedMemoryRef, what: string): Uint8Array {
    const { region, fd } = this.find(ref, what);
    const out = new Uint8Array(ref.byteSize);
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, region.offset + ref.offset + done);
      if (n === 0) {
        throw bad(
          `${what}: shared memory object '${region.key}' ends before the ${ref.byteSize} bytes at offset ${ref.offset} of region '${ref.region}' (was it truncated?)`,
        );
      }
      done += n;
    }
    return out;
  }

  /** Writes `bytes` where the reference points (they must fit in its byte size). */
  write(ref: SharedMemoryRef, bytes: Uint8Array, what: string): void {
    const { region, fd } = this.find(ref, what);
    if (bytes.byteLength > ref.byteSize) {
      throw bad(
        `${what} is ${bytes.byteLength} bytes, more than its shared_memory_byte_size of ${ref.byteSize}`,
      );
    }
    let done = 0;
    while (done < bytes.byteLength) {
      done += writeSync(fd, bytes, done, bytes.byteLength - done, region.offset + ref.offset + done);
    }
  }

  /** Closes every object (at shutdown). */
  close(): void {
    this.unregister();
  }

  private find(ref: SharedMemoryRef, what: string): { region: SharedMemoryRegion; fd: number } {
    const r = this.regions.get(ref.region);
    if (!r) throw bad(`${what}: shared memory region '${ref.region}' is not registered`);
    if (ref.offset + ref.byteSize > r.region.byteSize) {
      throw bad(
        `${what}: shared_memory_offset ${ref.offset} + shared_memory_byte_size ${ref.byteSize} runs past the end of region '${ref.region}' (${r.region.byteSize} bytes)`,
      );
    }
    return r;
  }
}

/**
 * The shared memory parameters of an input or requested output, or undefined when it has none.
 * `shared_memory_region` and `shared_memory_byte_size` come together; the offset is optional.
 */
export function sharedMemoryRef(p: Parameters | undefined, what: string): SharedMemoryRef | undefined {
  if (!p) return undefined;
  const region = p.shared_memory_region;
  const byteSize = p.shared_memory_byte_size;
  const offset = p.shared_memory_offset;
  if (region === undefined && byteSize === undefined) {
    if (offset !== undefined) throw bad(`${what}: shared_memory_offset needs shared_memory_region`);
    return undefined;
  }
  if (typeof region !== 'string' || region === '') {
    throw bad(`${what}: shared_memory_region must be a registered region's name`);
  }
  if (!isCount(byteSize)) {
    throw bad(
      `${what}: shared_memory_byte_size must be a non-negative integer, got ${describeValue(byteSize)}`,
    );
  }
  if (offset !== undefined && !isCount(offset)) {
    throw bad(`${what}: shared_memory_offset must be a non-negative integer, got ${describeValue(offset)}`);
  }
  return { region, byteSize, offset: offset ?? 0 };
}

/** An input's data read from shared memory, when its parameters point there; undefined otherwise. */
export function sharedInputData(
  regions: SharedMemoryRegions | undefined,
  input: Pick<Tensor, 'name' | 'datatype' | 'parameters'>,
): Tensor['data'] | undefined {
  const ref = sharedMemoryRef(input.parameters, `input '${input.name}'`);
  return ref ? readSharedInput(regions, ref, input) : undefined;
}

/** The data of an input whose shared memory parameters were read already. */
export function readSharedInput(
  regions: SharedMemoryRegions | undefined,
  ref: SharedMemoryRef,
  input: Pick<Tensor, 'name' | 'datatype'>,
): Tensor['data'] {
  const what = `input '${input.name}'`;
  if (!regions) throw bad(`${what}: shared memory region '${ref.region}' is not registered`);
  return fromBytes(input.datatype, regions.read(ref, what), input.name);
}

/** Checks the regions of the request's outputs wanted in shared memory (before the model runs). */
export function checkSharedOutputs(regions: SharedMemoryRegions | undefined, request: InferRequest): void {
  for (const o of request.outputs ?? []) {
    const what = `output '${o.name}'`;
    const ref = sharedMemoryRef(o.parameters, what);
    if (!ref) continue;
    if (o.parameters?.classification !== undefined) {
      throw bad(`${what}: a classification cannot be written to shared memory`);
    }
    if (!regions) throw bad(`${what}: shared memory region '${ref.region}' is not registered`);
    regions.check(ref, what);
  }
}

/** Outputs written to shared memory, which the encoders answer with their shape alone. */
const written = new WeakSet<Tensor>();

/**
 * Writes the outputs the request wants in shared memory and marks them, so the encoders send
 * their name, datatype and shape without data or parameters, as Triton does (its C++ client
 * reads any output `parameters` as the binary extension's).
 */
export function writeSharedOutputs(
  regions: SharedMemoryRegions | undefined,
  request: InferRequest,
  response: InferResponse,
): void {
  if (!regions || !request.outputs) return;
  for (const o of request.outputs) {
    const what = `output '${o.name}'`;
    const ref = sharedMemoryRef(o.parameters, what);
    if (!ref) continue;
    const out = response.outputs.find((t) => t.name === o.name);
    if (!out) continue;
    const bytes = toBytes(out.datatype, out.data);
    regions.write(ref, bytes, what);
    written.add(out);
  }
}

/** Whether an output was written to shared memory (its data then stays out of the answer). */
export function inSharedMemory(t: Tensor): boolean {
  return written.has(t);
}

/** This server runs models on CPU: CUDA regions are answered as absent, and never registered. */
export function cudaUnsupported(): SlipwayError {
  return bad(
    'CUDA shared memory is not supported: this server runs models on CPU; register system shared memory instead',
  );
}

/** The answer to a status request for a named CUDA region (there are none). */
export function noCudaRegion(name: string): SlipwayError {
  return new SlipwayError(
    'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
    `no CUDA shared memory region '${name}' is registered (this server has none)`,
  );
}
