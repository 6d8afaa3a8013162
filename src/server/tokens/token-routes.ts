import type { FastifyPluginAsync } from 'fastify';
import { MAX_TOKEN_DAYS, SCOPES, type TokenInfo, type TokenStore } from '../../auth/index.js';
import { SlipwayError } from '../../errors/index.js';
import { bodyAsSent } from '../api/index.js';

const CREATE_FIELDS = new Set(['name', 'scopes', 'expires_in_days']);

function createBody(body: unknown): { name: string; scopes: string[]; expiresInDays?: number } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      'the body must be a JSON object {name, scopes, expires_in_days?}',
    );
  }
  for (const k of Object.keys(body)) {
    if (!CREATE_FIELDS.has(k)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `unknown field ${JSON.stringify(k)}; known: name, scopes, expires_in_days`,
      );
    }
  }
  const b = body as Record<string, unknown>;
  if (typeof b.name !== 'string')
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "token 'name' must be a string");
  return {
    name: b.name,
    scopes: b.scopes as string[],
    ...(b.expires_in_days === undefined ? {} : { expiresInDays: b.expires_in_days as number }),
  };
}

const tokenInfo = {
  type: 'object',
  required: ['id', 'name', 'scopes', 'created_ms', 'created_by'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
    created_ms: { type: 'integer' },
    created_by: { type: 'string' },
    expires_ms: { type: ['integer', 'null'] },
    revoked_ms: { type: ['integer', 'null'] },
    last_used_ms: { type: ['integer', 'null'] },
  },
} as const;

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;

function wire(t: TokenInfo) {
  return {
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    created_ms: t.createdMs,
    created_by: t.createdBy,
    expires_ms: t.expiresMs,
    revoked_ms: t.revokedMs,
    last_used_ms: t.lastUsedMs,
  };
}

/**
 * `/api/v1/tokens`: create (the secret is in this answer only), list and revoke API tokens.
 * Needs the `admin` scope.
 */
export function tokenRoutes(tokens: TokenStore): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Body: unknown }>(
      '/api/v1/tokens',
      {
        config: { scope: 'admin' },
        validatorCompiler: bodyAsSent,
        schema: {
          tags: ['tokens'],
          summary: 'Create an API token; the token itself is returned once and stored only as a hash',
          body: {
            type: 'object',
            required: ['name', 'scopes'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 200 },
              scopes: { type: 'array', minItems: 1, items: { type: 'string', enum: [...SCOPES] } },
              expires_in_days: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TOKEN_DAYS },
            },
          },
          response: {
            201: {
              type: 'object',
              required: ['token', 'info'],
              properties: { token: { type: 'string' }, info: tokenInfo },
            },
            400: errorBody,
          },
        },
      },
      async (req, reply) => {
        const { token, info } = await tokens.create(createBody(req.body), req.principal.name);
        reply.code(201);
        return { token, info: wire(info) };
      },
    );
    app.get(
      '/api/v1/tokens',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['tokens'],
          summary: 'List API tokens (never their secrets)',
          response: {
            200: {
              type: 'object',
              required: ['tokens'],
              properties: { tokens: { type: 'array', items: tokenInfo } },
            },
          },
        },
      },
      async () => ({ tokens: (await tokens.list()).map(wire) }),
    );
    app.delete<{ Params: { id: string } }>(
      '/api/v1/tokens/:id',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['tokens'],
          summary: 'Revoke an API token',
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
          response: { 200: tokenInfo, 404: errorBody },
        },
      },
      async (req) => wire(await tokens.revoke(req.params.id)),
    );
  };
}
