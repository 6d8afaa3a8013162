/**
 * MLflow's artifact proxy (`mlflow-artifacts:/…` URIs resolve to these routes): uploads stream
 * into the `ArtifactRepository`, downloads stream out of it, listings are MLflow's.
 */
import { posix } from 'node:path';
import type { FastifyInstance, FastifyReply, HTTPMethods, RouteHandlerMethod } from 'fastify';
import {
  type ArtifactRepository,
  confinePath,
  isRegistryPath,
  REGISTRY_ROOT,
} from '../../artifacts/index.js';
import type { Scope } from '../../auth/index.js';
import { SlipwayError } from '../../errors/index.js';
import { mlflowRoute } from './mlflow-route.js';

/** The MLflow client falls back to one PUT when the reply's message starts with this. */
export const MULTIPART_UNSUPPORTED = 'Multipart upload is not supported for the current artifact repository';

export function artifactRoutes(app: FastifyInstance, artifacts: ArtifactRepository): void {
  // Any content type streams untouched: the MLflow client sends text/plain, application/json,
  // application/octet-stream… for files, and an artifact is never parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  // Artifact bodies stream and downloads use the reply, so these routes take Fastify's handler as is.
  const route = (method: HTTPMethods, url: string, scope: Scope, handler: RouteHandlerMethod) =>
    app.route({ method, url, config: { scope }, schema: { hide: true }, handler });

  // The router decodes the wildcard once; `confinePath` refuses `..` also when still encoded.
  const pathOf = (params: unknown): string => confinePath((params as { '*'?: string })['*'] ?? '');

  // Registry versions are immutable (their metadata records each file's sha256): the proxy
  // reads them but never changes them, nor deletes a folder that holds them.
  const refuseRegistry = (path: string, verb: string) => {
    if (verb === 'delete' && path === '') {
      throw new SlipwayError(
        'SLIPWAY_ERR_ARTIFACT_PATH',
        `path must name a file or folder: deleting the artifact root would delete every run's artifacts and '${REGISTRY_ROOT}/', where registry versions are immutable`,
      );
    }
    if (isRegistryPath(path)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_ARTIFACT_PATH',
        `path '${path}': cannot ${verb} under '${REGISTRY_ROOT}/', where registry versions are immutable; ` +
          'register a new version instead',
      );
    }
  };

  route('PUT', '/artifacts/*', 'write', async (req) => {
    const path = pathOf(req.params);
    if (path === '') throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_PATH', 'path must name a file');
    refuseRegistry(path, 'write');
    await artifacts.put(path, req.raw);
    return {};
  });

  const list = async (raw: unknown) => {
    const dir = confinePath(typeof raw === 'string' ? raw : '');
    // A file's path lists nothing; the client turns that into "no children", as MLflow does.
    const entries = await artifacts.list(dir);
    return {
      files: entries.map((e) => ({
        path: posix.basename(e.path),
        is_dir: e.isDir,
        ...(e.isDir ? {} : { file_size: e.size }),
      })),
    };
  };
  route('GET', '/artifacts', 'read', async (req) => list((req.query as { path?: unknown }).path));
  route('GET', '/artifacts/*', 'read', async (req, reply) => {
    const path = pathOf(req.params);
    if (path === '') return list((req.query as { path?: unknown }).path);
    return download(artifacts, path, reply);
  });
  route('DELETE', '/artifacts/*', 'write', async (req) => {
    const path = pathOf(req.params);
    refuseRegistry(path, 'delete');
    const file = path === '' ? undefined : await artifacts.stat(path);
    const files = file ? [file] : await artifacts.filesUnder(path);
    if (files.length === 0) {
      throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', `no artifact at '${path}'`);
    }
    for (const f of files) await artifacts.delete(f.path);
    return {};
  });

  for (const step of ['create', 'complete', 'abort']) {
    mlflowRoute(app, 'POST', `/mpu/${step}/*`, 'write', {}, async () => {
      throw new SlipwayError('SLIPWAY_ERR_NOT_IMPLEMENTED', MULTIPART_UNSUPPORTED);
    });
  }
  mlflowRoute(app, 'GET', '/presigned/*', 'read', {}, async () => {
    throw new SlipwayError(
      'SLIPWAY_ERR_NOT_IMPLEMENTED',
      'Presigned download is not supported for the current artifact repository',
    );
  });
}

async function download(artifacts: ArtifactRepository, path: string, reply: FastifyReply) {
  const found = await artifacts.get(path);
  if (!found) throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', `no artifact file at '${path}'`);
  reply
    .type('application/octet-stream')
    .header('content-length', String(found.file.size))
    .header('content-disposition', `attachment; filename="${encodeURIComponent(posix.basename(path))}"`);
  return reply.send(found.body);
}
