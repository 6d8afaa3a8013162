import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { ANONYMOUS, type Principal, type Scope } from '../../auth/index.js';
import { SlipwayError, toSlipwayError } from '../../errors/index.js';

export interface ApiServerOptions {
  logger: Logger;
  version: string;
  /** Largest JSON body, in bytes (artifact uploads stream and are not bound by it). */
  bodyLimit: number;
  /** Route groups, each a Fastify plugin with its own prefix, schemas and error format. */
  plugins: FastifyPluginAsync[];
  /**
   * Who is calling, for routes that declare `config.scope`; throws SLIPWAY_ERR_UNAUTHENTICATED or
   * SLIPWAY_ERR_FORBIDDEN. Absent: everyone is `anonymous` with every scope.
   */
  authenticate?: (req: IncomingMessage, scope: Scope) => Promise<Principal>;
}

export interface ApiServer {
  fastify: FastifyInstance;
  /** Hands one request to the router; the REST server calls it for every non-inference path. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  close(): Promise<void>;
}

/**
 * The control plane's router: registry, MLflow tracking and admin routes on Fastify, sharing the
 * inference server's port. Route schemas validate requests and are the source of `/openapi.json`
 * (routes marked `hide` are left out); `/docs` renders it.
 *
 * @example
 *   const api = await buildApiServer({ logger, version, bodyLimit: 1 << 26, plugins: [adminRoutes(registry)] });
 *   startHttpServer(plane, { …, fallback: api.handle });
 */
export async function buildApiServer(options: ApiServerOptions): Promise<ApiServer> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const fastify = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    // Path parameters carry names of up to 256 characters (rules, models), percent-encoded up
    // to three times as long; Fastify's default of 100 answers longer ones with its own 414.
    routerOptions: { maxParamLength: 2048 },
    // A path Fastify's router refuses (a parameter past that length, a malformed URL) is answered
    // in the shape of the API it was meant for.
    frameworkErrors: (err, req, reply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const e = new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        tooLong ? 'a path segment is longer than the 2048 characters a name may take' : err.message,
      );
      const status = tooLong ? 414 : e.httpStatus;
      const mlflow = /^\/(?:api\/[0-9.]+\/mlflow(?:-artifacts)?|ajax-api)\//.test(req.url);
      (reply as unknown as FastifyReply)
        .code(status)
        .send(mlflow ? { error_code: e.mlflowCode, message: e.message } : { error: e.message, code: e.code });
    },
    // Fastify never listens: the REST server owns the socket and hands requests over.
    serverFactory: (h) => {
      handler = h;
      return createServer();
    },
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        allErrors: false,
        allowUnionTypes: true,
      },
    },
  });
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Slipway admin API',
        version: options.version,
        description:
          'Registry, model cards, aliases, audit log and tokens. Generated from the route schemas.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          basic: { type: 'http', scheme: 'basic' },
        },
      },
    },
  });
  await fastify.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger());
  fastify.setNotFoundHandler((req, reply) => {
    const e = new SlipwayError(
      'SLIPWAY_ERR_ROUTE_NOT_FOUND',
      `no endpoint ${req.method} ${req.url.split('?')[0]}`,
    );
    reply.code(e.httpStatus).send({ error: e.message, code: e.code });
  });
  fastify.setErrorHandler((err, _req, reply) => {
    const e = fastifyErrorToSlipway(err);
    if (e.code === 'SLIPWAY_ERR_INTERNAL') options.logger.error({ err }, 'internal error');
    const retry = e.retryAfter;
    if (retry !== undefined) reply.header('retry-after', String(retry));
    reply.code(e.httpStatus).send({ error: e.message, code: e.code });
  });
  // Compressed bodies, as the inference routes take them; bodyLimit counts the decompressed bytes.
  fastify.addHook('preParsing', async (req, _reply, payload) => {
    const encoding = req.headers['content-encoding'];
    if (!encoding || encoding === 'identity') return payload;
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `Content-Encoding '${encoding}' is not supported (gzip, deflate)`,
      );
    }
    // Uploads (ONNX files, artifacts) are streamed to storage as sent; only JSON is inflated here.
    const type = String(req.headers['content-type'] ?? '');
    if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `Content-Encoding '${encoding}' is accepted on JSON bodies only; send ${type ? `a ${type} body` : 'this body'} uncompressed`,
      );
    }
    const inflated: Transform & { receivedEncodedLength?: number } = payload.pipe(
      encoding === 'gzip' ? createGunzip() : createInflate(),
    );
    // Fastify compares the bytes that came in, not the inflated ones, with Content-Length.
    inflated.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => {
      inflated.receivedEncodedLength! += chunk.length;
    });
    // Fastify's body reader reports a corrupt stream as a 400; this keeps one it never reads
    // (a request refused before its body) from being an unhandled 'error' event.
    inflated.on('error', () => undefined);
    return inflated;
  });
  fastify.decorateRequest('principal', null as unknown as Principal);
  const authenticate = options.authenticate;
  fastify.addHook('onRequest', async (req) => {
    const scope = req.routeOptions.config.scope;
    req.principal = scope && authenticate ? await authenticate(req.raw, scope) : ANONYMOUS;
  });
  for (const plugin of options.plugins) await fastify.register(plugin);
  await fastify.ready();
  if (!handler) throw new Error('Fastify did not hand over its request handler');
  const h = handler;
  return {
    fastify,
    handle: (req, res) => h(req, res),
    close: () => fastify.close(),
  };
}

/** Fastify's own errors (validation, body too large, bad JSON) as Slipway errors naming the field. */
export function fastifyErrorToSlipway(err: unknown): SlipwayError {
  if (err instanceof SlipwayError) return err;
  const e = err as {
    validation?: unknown;
    validationContext?: string;
    statusCode?: number;
    code?: string;
    message?: string;
  };
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', describeValidation(e.validationContext, e.validation));
  }
  if (e.validation) {
    return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', e.message ?? 'the request is invalid');
  }
  if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
    return new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `the request body cannot be decompressed: ${e.message ?? e.code}`,
    );
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new SlipwayError('SLIPWAY_ERR_PAYLOAD_TOO_LARGE', e.message ?? 'the request body is too large');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new SlipwayError(
      e.statusCode === 404 ? 'SLIPWAY_ERR_ROUTE_NOT_FOUND' : 'SLIPWAY_ERR_BAD_REQUEST',
      e.message ?? 'bad request',
    );
  }
  return toSlipwayError(err);
}

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** "body.scopes[0] must be equal to one of the allowed values (read, write)": names the field. */
function describeValidation(context: string | undefined, issues: ValidationIssue[]): string {
  const where = context ?? 'request';
  return issues
    .map((i) => {
      const path = (i.instancePath ?? '')
        .split('/')
        .filter((x) => x !== '')
        .map((x) => (/^\d+$/.test(x) ? `[${x}]` : `.${x}`))
        .join('');
      const field = `${where}${path}`;
      const p = i.params ?? {};
      if (i.keyword === 'additionalProperties')
        return `${field}: unknown field '${String(p.additionalProperty)}'`;
      if (i.keyword === 'required') return `${field}.${String(p.missingProperty)} is required`;
      if (i.keyword === 'enum' && Array.isArray(p.allowedValues))
        return `${field} must be one of ${p.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
      return `${field} ${i.message ?? 'is invalid'}`;
    })
    .join('; ');
}
