/** The MLflow plugin on a real server on 127.0.0.1 port 0, for the MLflow route suites. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { ArtifactRepository } from '../../src/artifacts/index.js';
import type { Registry } from '../../src/registry/index.js';
import { type ApiServerOptions, buildApiServer } from '../../src/server/api/index.js';
import { type MlflowPluginDeps, mlflowPlugin } from '../../src/server/mlflow/index.js';
import { mlflowRegistryRoutes } from '../../src/server/mlflow/registry-routes.js';
import type { Tracking } from '../../src/tracking/index.js';

export interface MlflowTestServer {
  base: string;
  port: number;
  /** Any path on the server; a JSON body is parsed, any other body is returned as text. */
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** A path under `/api/2.0/mlflow`. */
  mlflow(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startMlflowServer(
  deps: MlflowPluginDeps,
  authenticate?: ApiServerOptions['authenticate'],
): Promise<MlflowTestServer> {
  const api = await buildApiServer({
    logger: pino({ level: 'silent' }),
    version: 'test',
    bodyLimit: 1 << 20,
    plugins: [mlflowPlugin(deps)],
    ...(authenticate ? { authenticate } : {}),
  });
  const http = createServer(api.handle);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const call: MlflowTestServer['call'] = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json, headers: res.headers };
  };
  return {
    base,
    port,
    call,
    mlflow: (method, path, body) => call(method, `/api/2.0/mlflow${path}`, body),
    async close() {
      await new Promise((r) => http.close(r));
      await api.close();
    },
  };
}

/** The MLflow server with tracking and the registry routes wired as the app wires them, acting as `actor`. */
export function startRegistryMlflowServer(
  deps: { tracking: Tracking; artifacts: ArtifactRepository; registry: Registry },
  actor: string,
): Promise<MlflowTestServer> {
  const { tracking, artifacts, registry } = deps;
  return startMlflowServer(
    {
      tracking,
      artifacts,
      registryRoutes: mlflowRegistryRoutes({
        registry,
        resolveSource: (source, id) => tracking.resolveModelSource(source, id),
        loggedModelRun: async (id) => (await tracking.getLoggedModel(id)).info.sourceRunId,
      }),
    },
    async () => ({ name: actor, scopes: ['write'] }),
  );
}
