import type { IncomingMessage } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { SlipwayError } from '../../errors/index.js';
import {
  type ModelVersion,
  parseFilter,
  parseMetricPairs,
  parseTagPairs,
  type Registry,
  type SearchCondition,
  type SearchOrder,
} from '../../registry/index.js';
import {
  aliasInfo,
  aliasMove,
  auditEntry,
  commonErrors,
  errorBody,
  MODEL_NAME_PATTERN,
  modelCard,
  modelVersion,
  registeredModel,
  sectionsIn,
  wireAlias,
  wireAudit,
  wireCard,
  wireModel,
  wireMove,
  wireVersion,
} from './admin-schemas.js';

export interface AdminRoutesOptions {
  /** Largest ONNX upload, in bytes (uploads stream to the blob store; default 4 GiB). */
  maxUploadBytes?: number;
}

const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: MODEL_NAME_PATTERN, maxLength: 200 } },
} as const;

const versionParams = {
  type: 'object',
  required: ['name', 'version'],
  properties: {
    name: nameParam.properties.name,
    version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
  },
} as const;

/**
 * Refuses a version that is not plain decimal digits before AJV sees it: coercing to an integer,
 * it would read `1e3` as 1000 and `1 ` as 1.
 */
async function decimalVersion(req: FastifyRequest): Promise<void> {
  const raw = (req.params as { version?: unknown }).version;
  if (typeof raw === 'string' && !/^[0-9]+$/.test(raw)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `params/version: ${JSON.stringify(raw)} is not a version number (decimal digits only)`,
    );
  }
}

const aliasParams = {
  type: 'object',
  required: ['name', 'alias'],
  properties: {
    name: nameParam.properties.name,
    alias: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
  },
} as const;

const tagUpdates = {
  type: 'object',
  description: 'key → value to set, or null to delete',
  additionalProperties: { type: ['string', 'null'], maxLength: 5000 },
} as const;

const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  page_token: { type: 'string', description: 'next_page_token of the previous page' },
} as const;

const repeated = (description: string) =>
  ({ type: 'array', items: { type: 'string' }, description }) as const;

const ORDER_KEYS: Record<string, string> = {
  name: 'name',
  created: 'creation_timestamp',
  updated: 'last_updated_timestamp',
};

type Params = { name: string };
type VersionParams = { name: string; version: number };
type AliasParams = { name: string; alias: string };

interface UploadQuery {
  description?: string;
  source?: string;
  run_id?: string;
  metric?: string[];
  tag?: string[];
  training_data?: string[];
  evaluation_data?: string[];
  alias?: string[];
  create_model?: boolean;
  file_name?: string;
  config?: string;
}

/**
 * The admin API over the registry, under `/api/v1`: registered models, versions (created by
 * uploading an ONNX file as `application/octet-stream`), aliases and their history, model
 * cards and the audit log. Reads need the `read` scope, changes `write`; the actor recorded in
 * the audit log is the caller's principal.
 *
 * @example
 *   const api = await buildApiServer({ …, plugins: [adminRoutes(registry)] });
 *   // curl -X POST --data-binary @model.onnx -H 'content-type: application/octet-stream' \
 *   //   'http://127.0.0.1:8080/api/v1/models/adult/versions?create_model=true&metric=auc=0.91&alias=champion'
 */
export function adminRoutes(registry: Registry, options: AdminRoutesOptions = {}): FastifyPluginAsync {
  const maxUpload = options.maxUploadBytes ?? 4 * 1024 ** 3;
  return async (app) => {
    const uploads = new WeakMap<FastifyRequest, IncomingMessage>();
    // The body is streamed to the blob store by the handler; validation sees an empty string.
    app.addContentTypeParser('application/octet-stream', (req, payload, done) => {
      uploads.set(req, payload as IncomingMessage);
      done(null, '');
    });

    // ------------------------------------------------------------ registered models

    app.get<{
      Querystring: {
        q?: string;
        tag?: string[];
        filter?: string;
        order_by?: string;
        descending?: boolean;
        limit: number;
        page_token?: string;
      };
    }>(
      '/api/v1/models',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['models'],
          summary: 'List or search registered models',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              q: { type: 'string', maxLength: 200, description: 'Part of the name, any case' },
              tag: repeated('key=value; every one must match'),
              filter: {
                type: 'string',
                maxLength: 4000,
                description: "MLflow filter syntax: name LIKE 'a%' AND tags.team = 'risk'",
              },
              order_by: { type: 'string', enum: Object.keys(ORDER_KEYS), default: 'name' },
              descending: { type: 'boolean', default: false },
              ...pageQuery,
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['models', 'next_page_token'],
              properties: {
                models: { type: 'array', items: registeredModel },
                next_page_token: { type: ['string', 'null'] },
              },
            },
            ...commonErrors,
          },
        },
      },
      async (req) => {
        const q = req.query;
        const conditions: SearchCondition[] = [];
        if (q.q) conditions.push({ kind: 'attribute', key: 'name', comparator: 'CONTAINS', value: q.q });
        for (const [key, value] of Object.entries(parseTagPairs(q.tag ?? [], 'tag'))) {
          conditions.push({ kind: 'tag', key, comparator: '=', value });
        }
        conditions.push(...parseFilter(q.filter, 'models'));
        const orderBy: SearchOrder[] = [
          { key: ORDER_KEYS[q.order_by ?? 'name']!, descending: q.descending === true },
        ];
        const r = await registry.searchModels({
          conditions,
          orderBy,
          maxResults: q.limit,
          pageToken: q.page_token,
        });
        return { models: r.models.map(wireModel), next_page_token: r.nextPageToken };
      },
    );

    app.post<{ Body: { name: string; description?: string; tags?: Record<string, string> } }>(
      '/api/v1/models',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['models'],
          summary: 'Register a model (its versions come later)',
          body: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: nameParam.properties.name,
              description: { type: 'string', maxLength: 50_000 },
              tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 5000 } },
            },
          },
          response: { 201: registeredModel, ...commonErrors, 409: errorBody },
        },
      },
      async (req, reply) => {
        const m = await registry.createModel(req.body, req.principal.name);
        reply.code(201);
        return wireModel(m);
      },
    );

    app.get<{ Params: Params }>(
      '/api/v1/models/:name',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['models'],
          summary: 'Get a registered model',
          params: nameParam,
          response: { 200: registeredModel, ...commonErrors, 404: errorBody },
        },
      },
      async (req) => wireModel(await registry.getModel(req.params.name)),
    );

    app.patch<{
      Params: Params;
      Body: { name?: string; description?: string; tags?: Record<string, string | null> };
    }>(
      '/api/v1/models/:name',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['models'],
          summary: 'Rename a model, change its description, set or delete tags',
          params: nameParam,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              name: { ...nameParam.properties.name, description: 'New name (versions move with it)' },
              description: { type: 'string', maxLength: 50_000 },
              tags: tagUpdates,
            },
          },
          response: { 200: registeredModel, ...commonErrors, 404: errorBody, 409: errorBody },
        },
      },
      async (req) => {
        const actor = req.principal.name;
        let name = req.params.name;
        if (req.body.name !== undefined && req.body.name !== name) {
          name = (await registry.renameModel(name, req.body.name, actor)).name;
        }
        const m = await registry.updateModel(
          name,
          { description: req.body.description, tags: req.body.tags },
          actor,
        );
        return wireModel(m);
      },
    );

    app.delete<{ Params: Params }>(
      '/api/v1/models/:name',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['models'],
          summary: 'Delete a model with all its versions, aliases and card (the audit log stays)',
          params: nameParam,
          response: { 204: { type: 'null', description: 'Deleted' }, ...commonErrors, 404: errorBody },
        },
      },
      async (req, reply) => {
        await registry.deleteModel(req.params.name, req.principal.name);
        reply.code(204).send();
      },
    );

    // ------------------------------------------------------------ versions

    app.post<{ Params: Params; Querystring: UploadQuery }>(
      '/api/v1/models/:name/versions',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['versions'],
          summary: 'Register a new version by uploading its ONNX file',
          description:
            'The body is the ONNX file (Content-Type: application/octet-stream); the rest are query parameters. ' +
            'The signature is read from the graph; a file ONNX Runtime cannot load is a 400.',
          params: nameParam,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              description: { type: 'string', maxLength: 50_000 },
              source: { type: 'string', maxLength: 4096, description: 'Where the model came from' },
              run_id: { type: 'string', maxLength: 64 },
              metric: repeated('name=number'),
              tag: repeated('key=value'),
              training_data: repeated('dataset name@version, or a URI'),
              evaluation_data: repeated('dataset name@version, or a URI'),
              alias: repeated('aliases to point at the new version'),
              create_model: {
                type: 'boolean',
                default: false,
                description: 'Register the model if it is new',
              },
              file_name: {
                type: 'string',
                maxLength: 255,
                description: 'Named in errors; default model.onnx',
              },
              config: {
                type: 'string',
                maxLength: 100_000,
                description: 'Serving settings (config.json), as JSON',
              },
            },
          },
          body: {
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          response: { 201: modelVersion, ...commonErrors, 404: errorBody, 413: errorBody },
        },
      },
      async (req, reply) => {
        const body = uploads.get(req);
        if (!body) {
          throw new SlipwayError(
            'SLIPWAY_ERR_BAD_REQUEST',
            'body: send the ONNX file as Content-Type: application/octet-stream',
          );
        }
        const q = req.query;
        let config: Record<string, unknown> | undefined;
        if (q.config !== undefined) {
          try {
            config = JSON.parse(q.config) as Record<string, unknown>;
          } catch (err) {
            throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `config: not JSON: ${(err as Error).message}`);
          }
        }
        const metrics = parseMetricPairs(q.metric ?? [], 'metric');
        const tags = parseTagPairs(q.tag ?? [], 'tag');
        let v: ModelVersion;
        const file = limited(body, maxUpload);
        try {
          if (Number(req.headers['content-length']) > maxUpload) throw tooLarge(maxUpload);
          v = await registry.createVersion(
            {
              name: req.params.name,
              content: { file, fileName: q.file_name ?? 'model.onnx' },
              createModel: q.create_model === true,
              description: q.description,
              source: q.source,
              runId: q.run_id,
              metrics,
              tags,
              trainingData: q.training_data,
              evaluationData: q.evaluation_data,
              aliases: q.alias,
              config,
            },
            req.principal.name,
          );
        } catch (err) {
          // Whatever failed, the rest of the body is read and dropped so that a client that sends
          // it all before reading (Python's http.client) gets the answer; an oversized one is not
          // worth keeping the connection for.
          file.destroy();
          body.unpipe();
          body.resume();
          if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_PAYLOAD_TOO_LARGE') {
            reply.header('connection', 'close');
          }
          throw err;
        }
        reply.code(201);
        return wireVersion(v);
      },
    );

    app.get<{ Params: Params; Querystring: { limit: number; page_token?: string } }>(
      '/api/v1/models/:name/versions',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['versions'],
          summary: "A model's versions, newest first",
          params: nameParam,
          querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } },
          response: {
            200: {
              type: 'object',
              required: ['versions', 'next_page_token'],
              properties: {
                versions: { type: 'array', items: modelVersion },
                next_page_token: { type: ['string', 'null'] },
              },
            },
            ...commonErrors,
            404: errorBody,
          },
        },
      },
      async (req) => {
        const r = await registry.listVersions(req.params.name, {
          maxResults: req.query.limit,
          pageToken: req.query.page_token,
        });
        return { versions: r.versions.map(wireVersion), next_page_token: r.nextPageToken };
      },
    );

    app.get<{ Params: VersionParams }>(
      '/api/v1/models/:name/versions/:version',
      {
        preValidation: decimalVersion,
        config: { scope: 'read' },
        schema: {
          tags: ['versions'],
          summary: 'Get a version',
          params: versionParams,
          response: { 200: modelVersion, ...commonErrors, 404: errorBody },
        },
      },
      async (req) => wireVersion(await registry.getVersion(req.params.name, req.params.version)),
    );

    app.patch<{
      Params: VersionParams;
      Body: { description?: string; tags?: Record<string, string | null> };
    }>(
      '/api/v1/models/:name/versions/:version',
      {
        preValidation: decimalVersion,
        config: { scope: 'write' },
        schema: {
          tags: ['versions'],
          summary: "Change a version's description or tags (its files and metrics are immutable)",
          params: versionParams,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: { description: { type: 'string', maxLength: 50_000 }, tags: tagUpdates },
          },
          response: { 200: modelVersion, ...commonErrors, 404: errorBody },
        },
      },
      async (req) =>
        wireVersion(
          await registry.updateVersion(req.params.name, req.params.version, req.body, req.principal.name),
        ),
    );

    app.delete<{ Params: VersionParams }>(
      '/api/v1/models/:name/versions/:version',
      {
        preValidation: decimalVersion,
        config: { scope: 'write' },
        schema: {
          tags: ['versions'],
          summary: 'Delete a version and its files; aliases pointing at it are deleted too',
          params: versionParams,
          response: { 204: { type: 'null', description: 'Deleted' }, ...commonErrors, 404: errorBody },
        },
      },
      async (req, reply) => {
        await registry.deleteVersion(req.params.name, req.params.version, req.principal.name);
        reply.code(204).send();
      },
    );

    // ------------------------------------------------------------ aliases

    app.get<{ Params: Params }>(
      '/api/v1/models/:name/aliases',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['aliases'],
          summary: "A model's aliases",
          params: nameParam,
          response: {
            200: {
              type: 'object',
              required: ['aliases'],
              properties: { aliases: { type: 'array', items: aliasInfo } },
            },
            ...commonErrors,
            404: errorBody,
          },
        },
      },
      async (req) => ({ aliases: (await registry.listAliases(req.params.name)).map(wireAlias) }),
    );

    app.get<{ Params: AliasParams }>(
      '/api/v1/models/:name/aliases/:alias',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['aliases'],
          summary: 'The version an alias points at',
          params: aliasParams,
          response: { 200: modelVersion, ...commonErrors, 404: errorBody },
        },
      },
      async (req) => wireVersion(await registry.getVersionByAlias(req.params.name, req.params.alias)),
    );

    app.put<{ Params: AliasParams; Body: { version: number } }>(
      '/api/v1/models/:name/aliases/:alias',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['aliases'],
          summary: 'Point an alias at a version (set or move it, atomically); serving follows',
          params: aliasParams,
          body: {
            type: 'object',
            required: ['version'],
            additionalProperties: false,
            properties: { version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } },
          },
          response: { 200: aliasMove, ...commonErrors, 404: errorBody, 409: errorBody },
        },
      },
      async (req) =>
        wireMove(
          await registry.setAlias(req.params.name, req.params.alias, req.body.version, req.principal.name),
        ),
    );

    app.delete<{ Params: AliasParams }>(
      '/api/v1/models/:name/aliases/:alias',
      {
        config: { scope: 'write' },
        schema: {
          tags: ['aliases'],
          summary: 'Delete an alias',
          params: aliasParams,
          response: { 200: aliasMove, ...commonErrors, 404: errorBody },
        },
      },
      async (req) =>
        wireMove(await registry.deleteAlias(req.params.name, req.params.alias, req.principal.name)),
    );

    app.get<{ Params: Params; Querystring: { alias?: string } }>(
      '/api/v1/models/:name/alias-history',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['aliases'],
          summary: "Every move of the model's aliases, newest first",
          params: nameParam,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { alias: { type: 'string', maxLength: 64, description: 'Only this alias' } },
          },
          response: {
            200: {
              type: 'object',
              required: ['moves'],
              properties: { moves: { type: 'array', items: aliasMove } },
            },
            ...commonErrors,
            404: errorBody,
          },
        },
      },
      async (req) => ({
        moves: (await registry.aliasHistory(req.params.name, req.query.alias)).map(wireMove),
      }),
    );

    // ------------------------------------------------------------ model card

    app.get<{ Params: Params }>(
      '/api/v1/models/:name/card',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['model cards'],
          summary: "The model card: written sections and the registry's facts",
          params: nameParam,
          response: { 200: modelCard, ...commonErrors, 404: errorBody },
        },
      },
      async (req) => wireCard(await registry.getCard(req.params.name)),
    );

    for (const method of ['PUT', 'PATCH'] as const) {
      app.route<{ Params: Params; Body: { sections: Record<string, string> } }>({
        method,
        url: '/api/v1/models/:name/card',
        config: { scope: 'write' },
        schema: {
          tags: ['model cards'],
          summary:
            method === 'PUT'
              ? 'Replace the written sections (sections not given become empty)'
              : 'Edit some sections (the others stay)',
          params: nameParam,
          body: {
            type: 'object',
            required: ['sections'],
            additionalProperties: false,
            properties: { sections: sectionsIn },
          },
          response: { 200: modelCard, ...commonErrors, 404: errorBody },
        },
        handler: async (req) =>
          wireCard(
            await registry.updateCard(req.params.name, req.body.sections, req.principal.name, {
              replace: method === 'PUT',
            }),
          ),
      });
    }

    for (const [suffix, format, type] of [
      ['md', 'markdown', 'text/markdown; charset=utf-8'],
      ['html', 'html', 'text/html; charset=utf-8'],
    ] as const) {
      app.get<{ Params: Params }>(
        `/api/v1/models/:name/card.${suffix}`,
        {
          config: { scope: 'read' },
          schema: {
            tags: ['model cards'],
            summary: `The model card rendered as ${format === 'html' ? 'an HTML page' : 'Markdown'}`,
            params: nameParam,
            produces: [type.split(';')[0]!],
            response: {
              200: {
                description: `The card as ${format}`,
                content: { [type.split(';')[0]!]: { schema: { type: 'string' } } },
              },
              ...commonErrors,
              404: errorBody,
            },
          },
        },
        async (req, reply) => {
          const text = await registry.renderCard(req.params.name, format);
          return reply.type(type).send(text);
        },
      );
    }

    // ------------------------------------------------------------ audit log

    app.get<{
      Querystring: {
        model?: string;
        actor?: string;
        action?: string;
        since_ms?: number;
        until_ms?: number;
        before?: number;
        limit: number;
      };
    }>(
      '/api/v1/audit',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['audit'],
          summary: 'The audit log of registry changes, newest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              model: { type: 'string', maxLength: 200 },
              actor: { type: 'string', maxLength: 256 },
              action: {
                type: 'string',
                maxLength: 64,
                description: 'An action (alias.set) or a family (alias.*)',
              },
              since_ms: { type: 'integer', minimum: 0 },
              until_ms: { type: 'integer', minimum: 0 },
              before: { type: 'integer', minimum: 1, description: 'next of the previous page' },
              limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['entries', 'next'],
              properties: {
                entries: { type: 'array', items: auditEntry },
                next: { type: ['integer', 'null'], description: 'Pass as before= for older entries' },
              },
            },
            ...commonErrors,
          },
        },
      },
      async (req) => {
        const q = req.query;
        const r = await registry.auditLog({
          model: q.model,
          actor: q.actor,
          action: q.action,
          sinceMs: q.since_ms,
          untilMs: q.until_ms,
          beforeSeq: q.before,
          limit: q.limit,
        });
        return { entries: r.entries.map(wireAudit), next: r.next };
      },
    );
  };
}

function tooLarge(max: number): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_PAYLOAD_TOO_LARGE', `body: the ONNX file is larger than ${max} bytes`);
}

/**
 * Passes the upload through, failing with a 413 once it exceeds `max` bytes; the rest of the
 * body is read and dropped (not reset), so the client gets the answer.
 */
function limited(body: IncomingMessage, max: number): Readable {
  let n = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.byteLength;
      if (n > max) {
        body.unpipe(out);
        body.resume();
        done(tooLarge(max));
        return;
      }
      done(null, chunk);
    },
  });
  // The consumer (the blob store) may start reading only after the limit already failed the
  // stream; it sees the error then. Until it listens, nothing else may treat it as unhandled.
  out.on('error', () => undefined);
  // `pipe` does not pass on a client's abort: without this the blob store would wait for the
  // rest forever, holding its temp file open.
  body.on('close', () => {
    if (!body.complete) {
      out.destroy(
        new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'body: the upload ended before the whole file was sent'),
      );
    }
  });
  body.pipe(out);
  return out;
}
