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
  refuseNul(msg);
  return msg;
}

/**
 * PostgreSQL text holds no NUL character; refused up front as the caller's mistake, naming the field.
 * Iterative: a body nested thousands of levels deep is JSON that parses, not a stack overflow.
 */
function refuseNul(root: unknown): void {
  const stack: Visit[] = [{ value: root, key: '', parent: undefined }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === 'string') {
      if (v.includes('\0')) {
        throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${pathOf(node)} must not contain NUL characters`);
      }
    } else if (Array.isArray(v)) {
      // Pushed in reverse so the first NUL in document order is the one named.
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: node });
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        stack.push({ value: entries[i]![1], key: entries[i]![0], parent: node });
      }
    }
  }
}

interface Visit {
  value: unknown;
  key: string | number;
  parent: Visit | undefined;
}

/** `tags[3].value`; a path deeper than a person reads is cut in the middle. */
function pathOf(node: Visit): string {
  const parts: string[] = [];
  for (let n: Visit | undefined = node; n?.parent; n = n.parent) {
    parts.push(typeof n.key === 'number' ? `[${n.key}]` : n.parent.parent ? `.${n.key}` : n.key);
  }
  if (parts.length === 0) return 'request';
  parts.reverse();
  return parts.length > 20 ? `${parts.slice(0, 10).join('')}…${parts.slice(-5).join('')}` : parts.join('');
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
  const nullable = nullCoerced((schema.body as SchemaNode | undefined) ?? {});
  app.route({
    method,
    url,
    config: { scope },
    schema: { hide: true, ...schema },
    // Before validation, which would coerce the null to 0, false or [''] and blame that value.
    ...(nullable.fields.length > 0
      ? { preValidation: async (req) => refuseNull(req.body, nullable, '') }
      : {}),
    handler: async (req) => handle(messageOf(req), req),
  });
}

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

/** The fields of a body schema that validation would coerce from null, and those of list items. */
interface NullCoerced {
  fields: string[];
  items: Record<string, NullCoerced>;
}

function nullCoerced(node: SchemaNode): NullCoerced {
  const out: NullCoerced = { fields: [], items: {} };
  for (const [name, field] of Object.entries(node.properties ?? {})) {
    if (field.type === 'integer' || field.type === 'boolean' || field.type === 'array') out.fields.push(name);
    if (field.type === 'array' && field.items?.properties) out.items[name] = nullCoerced(field.items);
  }
  return out;
}

function refuseNull(body: unknown, fields: NullCoerced, path: string): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const msg = body as Message;
  for (const name of fields.fields) {
    if (Object.hasOwn(msg, name) && msg[name] === null) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${path}${name} must not be null`);
    }
  }
  for (const [name, inner] of Object.entries(fields.items)) {
    const list = Object.hasOwn(msg, name) ? msg[name] : undefined;
    if (!Array.isArray(list)) continue;
    for (let i = 0; i < list.length; i++) refuseNull(list[i], inner, `${path}${name}[${i}].`);
  }
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
