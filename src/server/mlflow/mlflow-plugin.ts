import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ArtifactRepository } from '../../artifacts/index.js';
import { SlipwayError } from '../../errors/index.js';
import type { Tracking } from '../../tracking/index.js';
import { artifactRoutes } from './artifact-routes.js';
import { sendMlflowError } from './mlflow-json.js';
import { trackingRoutes } from './tracking-routes.js';

/**
 * What `GET /version` answers. The MLflow client parses it as a version and enables features by
 * it (3.x sends trace spans only to servers ≥ 3.4); Slipway answers the MLflow release whose
 * client its compatibility suite runs (interop/test_mlflow_tracking.py).
 */
export const MLFLOW_COMPAT_VERSION = '3.17.2';

/** The prefixes the MLflow client (`/api`) and MLflow's web UI (`/ajax-api`) call. */
export const MLFLOW_PREFIXES = ['/api/2.0/mlflow', '/ajax-api/2.0/mlflow'] as const;
export const MLFLOW_ARTIFACT_PREFIXES = [
  '/api/2.0/mlflow-artifacts',
  '/ajax-api/2.0/mlflow-artifacts',
] as const;

export interface MlflowPluginDeps {
  tracking: Tracking;
  artifacts: ArtifactRepository;
  /**
   * The model-registry routes (registered models, versions, aliases), registered inside each
   * MLflow prefix so they share its error format and 404s. Paths are relative to the prefix:
   * `app.post('/registered-models/create', …)`.
   */
  registryRoutes?: (app: FastifyInstance) => void | Promise<void>;
}

/**
 * The MLflow-compatible server: tracking and (given) registry routes under `/api/2.0/mlflow` and
 * `/ajax-api/2.0/mlflow`, the artifact proxy under `/api/2.0/mlflow-artifacts`, `/health` and
 * `/version`. Every error under these prefixes is MLflow's `{"error_code", "message"}` with
 * MLflow's status, unknown routes included (ENDPOINT_NOT_FOUND, 404).
 *
 * @example
 *   const api = await buildApiServer({ …, plugins: [mlflowPlugin({ tracking, artifacts, registryRoutes })] });
 *   // then: mlflow.set_tracking_uri("http://127.0.0.1:<port>")
 */
export function mlflowPlugin(deps: MlflowPluginDeps): FastifyPluginAsync {
  return async (app) => {
    for (const prefix of MLFLOW_PREFIXES) {
      await app.register(
        async (scope) => {
          useMlflowErrors(scope);
          trackingRoutes(scope, deps.tracking);
          if (deps.registryRoutes) await deps.registryRoutes(scope);
        },
        { prefix },
      );
    }
    for (const prefix of MLFLOW_ARTIFACT_PREFIXES) {
      await app.register(
        async (scope) => {
          useMlflowErrors(scope);
          artifactRoutes(scope, deps.artifacts);
        },
        { prefix },
      );
    }
    // The client reads /api/3.0/mlflow/server-info for what the artifact proxy supports.
    await app.register(
      async (scope) => {
        useMlflowErrors(scope);
        scope.get('/server-info', { schema: { hide: true } }, async () => ({
          store_type: 'SqlStore',
          workspaces_enabled: false,
          trace_archival_enabled: false,
          multipart_uploads_enabled: false,
          multipart_downloads_enabled: false,
        }));
      },
      { prefix: '/api/3.0/mlflow' },
    );
    app.get('/health', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/plain').send('OK'),
    );
    app.get('/version', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/plain').send(MLFLOW_COMPAT_VERSION),
    );
  };
}

/** MLflow's error body and statuses for everything in `scope`, including its 404s and validation errors. */
function useMlflowErrors(scope: FastifyInstance): void {
  scope.setErrorHandler((err, req, reply) => {
    const e = sendMlflowError(reply, err);
    if (e.code === 'SLIPWAY_ERR_INTERNAL') req.log.error({ err }, 'internal error on an MLflow route');
  });
  scope.setNotFoundHandler((req, reply) => {
    sendMlflowError(
      reply,
      new SlipwayError('SLIPWAY_ERR_ROUTE_NOT_FOUND', `no endpoint ${req.method} ${req.url.split('?')[0]}`),
    );
  });
}
