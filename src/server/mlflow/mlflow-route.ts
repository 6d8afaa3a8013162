/**
 * How an MLflow route is declared, shared by the tracking, registry and artifact routes: the
 * request message, the loose schema atoms, and `read` / `write` declarers that put a route's
 * fields in the query string for GET and in the JSON body otherwise (as MLflow's client sends them).
 */
import type { FastifyInstance, FastifyRequest, FastifySchema, HTTPMethods } from 'fastify';
import type { Scope } from '../../auth/index.js';
import { SlipwayError } from '../../errors/index.js';
import type { Message } from './mlflow-json.js';

export type Handle = (msg: Message, req: FastifyRequest) => Promise<unknown>;

/** The request message: query string, JSON body and path parameters together. */
export function messageOf(req: FastifyRequest): Message {
  const query = (req.query ?? {}) as Message;
  const body =
    req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Message) : {};
  const params = (req.params ?? {}) as Message;
  const msg = { ...query, ...body, ...params };
  refuseNul(msg, '');
  return msg;
}

/** PostgreSQL text holds no NUL character; refused up front as the caller's mistake, naming the field. */
function refuseNul(value: unknown, path: string): void {
  if (typeof value === 'string') {
    if (value.includes('\0')) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `${path || 'request'} must not contain NUL characters`,
      );
    }
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) refuseNul(value[i], `${path}[${i}]`);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) refuseNul(v, path ? `${path}.${k}` : k);
  }
}

/**
 * Declares one MLflow route: `read` or `write` scope, a loose schema (types only: MLflow ignores
 * unknown fields, and the handler names a missing field itself), hidden from /openapi.json.
 */
export function mlflowRoute(
  app: FastifyInstance,
  method: HTTPMethods | HTTPMethods[],
  url: string,
  scope: Scope,
  schema: FastifySchema,
  handle: Handle,
): void {
  app.route({
    method,
    url,
    config: { scope },
    schema: { hide: true, ...schema },
    handler: async (req) => handle(messageOf(req), req),
  });
}

export const S = { type: 'string' } as const;
export const I = { type: 'integer' } as const;
/** Enums arrive as names or numbers, metric values as numbers or 'NaN'/'Infinity': the handler checks them. */
export const ANY = {} as const;
export const KV_LIST = {
  type: 'array',
  items: { type: 'object', properties: { key: S, value: S } },
} as const;
export const STR_LIST = { type: 'array', items: S } as const;

export function body(properties: Record<string, unknown>): FastifySchema {
  return { body: { type: 'object', properties } };
}

export function query(properties: Record<string, unknown>): FastifySchema {
  return { querystring: { type: 'object', properties } };
}

type Declare = (
  method: HTTPMethods,
  url: string,
  fields: Record<string, unknown> | undefined,
  handle: Handle,
) => void;

/**
 * `read` and `write` route declarers on `app`; `fields` type the query string of a GET and the
 * JSON body of any other method (`undefined`: no schema, e.g. a DELETE by path).
 *
 * @example
 *   const { read, write } = mlflowRoutes(app);
 *   read('GET', '/experiments/get', { experiment_id: S }, async (msg) => ({ … }));
 */
export function mlflowRoutes(app: FastifyInstance): { read: Declare; write: Declare } {
  const declarer =
    (scope: Scope): Declare =>
    (method, url, fields, handle) => {
      const schema = fields === undefined ? {} : method === 'GET' ? query(fields) : body(fields);
      mlflowRoute(app, method, url, scope, schema, handle);
    };
  return { read: declarer('read'), write: declarer('write') };
}

/** MLflow's `next_page_token`, present only when there is a next page. */
export function nextPageJson(token: string | null | undefined): { next_page_token?: string } {
  return token ? { next_page_token: token } : {};
}
