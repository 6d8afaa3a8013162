import type { FastifyPluginAsync } from 'fastify';
import { SlipwayError } from '../../errors/index.js';
import { MAX_REQUEST_ID_LENGTH } from '../../inference/index.js';
import {
  type FeedbackInput,
  type Monitoring,
  parseDurationInput,
  parseTime,
  parseWindowReference,
  predictionJson,
} from '../../monitoring/index.js';
import { bodyAsSent } from '../api/index.js';

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;

const feedbackItem = {
  type: 'object',
  required: ['request_id', 'ground_truth'],
  additionalProperties: false,
  properties: {
    request_id: { type: 'string', minLength: 1, maxLength: MAX_REQUEST_ID_LENGTH },
    row: {
      type: 'integer',
      minimum: 0,
      description: "The request's row (0-based); 0 when it had one record",
    },
    ground_truth: { type: ['string', 'number', 'boolean'] },
    weight: { type: 'number', exclusiveMinimum: 0 },
  },
} as const;

const range = {
  model: { type: 'string', minLength: 1 },
  version: { type: 'string' },
  since: {
    type: 'string',
    description: 'ISO 8601 date or date-time, epoch ms (digits only), or a duration ago (1h); default 1d',
  },
  until: {
    type: 'string',
    description: 'ISO 8601 date or date-time, epoch ms (digits only), or a duration ago; default now',
  },
} as const;

type RangeQuery = { model: string; version?: string; since?: string; until?: string };

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

/** A query's range: both ends given or defaulted (the last day), since before until. */
function timeRange(q: RangeQuery): { sinceMs: number; untilMs: number } {
  const now = Date.now();
  const sinceMs = q.since === undefined ? now - 86_400_000 : parseTime(q.since, 'since', now);
  const untilMs = q.until === undefined ? now + 1 : parseTime(q.until, 'until', now);
  if (sinceMs >= untilMs) bad('since must be before until');
  return { sinceMs, untilMs };
}

/** The feedback items of a body: one item, an array of them, or `{feedback: [...]}`. */
function feedbackItems(body: unknown): FeedbackInput | readonly FeedbackInput[] {
  const shape =
    'the body must be a feedback item {request_id, ground_truth, row?, weight?}, an array of them or {"feedback": [...]}';
  const list = (items: unknown, field: string): readonly FeedbackInput[] => {
    if (!Array.isArray(items)) bad(`${field} must be an array of feedback items`);
    const n = (items as unknown[]).length;
    if (n === 0 || n > 100_000) bad(`${field} must hold 1 to 100000 items, got ${n}`);
    return items as FeedbackInput[];
  };
  if (Array.isArray(body)) return list(body, 'feedback');
  if (typeof body !== 'object' || body === null) bad(shape);
  const o = body as Record<string, unknown>;
  if (!('feedback' in o)) return o as unknown as FeedbackInput;
  for (const k of Object.keys(o)) {
    if (k !== 'feedback')
      bad(`${k} is not a field beside feedback (${shape.slice('the body must be '.length)})`);
  }
  return list(o.feedback, 'feedback');
}

/** A query's model, optional version and time range, as the monitoring service takes them. */
function modelRange(q: RangeQuery): { model: string; version?: string; sinceMs: number; untilMs: number } {
  return { model: q.model, ...(q.version !== undefined ? { version: q.version } : {}), ...timeRange(q) };
}

/**
 * `POST /v1/feedback` (ground truth, `predict` scope) and `/api/v1/monitoring/…` (`read`):
 * logged predictions, performance per window and segment, and the merged profile of a range.
 */
export function monitoringRoutes(monitoring: Monitoring): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Body: unknown }>(
      '/v1/feedback',
      {
        config: { scope: 'predict' },
        // Not the control plane's AJV: it coerces (null → "", "2" → 2) and answers a bad item of
        // this union with every branch's complaint. recordFeedback checks each field, naming it.
        validatorCompiler: bodyAsSent,
        schema: {
          tags: ['monitoring'],
          summary:
            'Ground truth for served predictions (one item, an array, or {feedback: [...]}), by request id; sending it again replaces it',
          body: {
            oneOf: [
              feedbackItem,
              { type: 'array', minItems: 1, maxItems: 100_000, items: feedbackItem },
              {
                type: 'object',
                required: ['feedback'],
                additionalProperties: false,
                properties: {
                  feedback: { type: 'array', minItems: 1, maxItems: 100_000, items: feedbackItem },
                },
              },
            ],
          },
          response: {
            200: { type: 'object', required: ['accepted'], properties: { accepted: { type: 'integer' } } },
            400: errorBody,
          },
        },
      },
      async (req) => monitoring.recordFeedback(feedbackItems(req.body)),
    );

    app.get<{ Querystring: RangeQuery & { request_id?: string; limit?: number } }>(
      '/api/v1/monitoring/predictions',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary: 'Logged predictions, newest first, with their ground truth when it has arrived',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...range,
              model: { type: 'string' },
              request_id: { type: 'string' },
              limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['predictions'],
              properties: {
                predictions: { type: 'array', items: { type: 'object', additionalProperties: true } },
              },
            },
            400: errorBody,
          },
        },
      },
      async (req) => {
        const q = req.query;
        const now = Date.now();
        // No default range here: without since and until, every logged prediction (newest first).
        // A reversed range is refused by the service, as on the other endpoints.
        const sinceMs = q.since !== undefined ? parseTime(q.since, 'since', now) : undefined;
        const untilMs = q.until !== undefined ? parseTime(q.until, 'until', now) : undefined;
        const predictions = await monitoring.predictions({
          ...(q.model !== undefined ? { model: q.model } : {}),
          ...(q.version !== undefined ? { version: q.version } : {}),
          ...(q.request_id !== undefined ? { requestId: q.request_id } : {}),
          ...(sinceMs !== undefined ? { sinceMs } : {}),
          ...(untilMs !== undefined ? { untilMs } : {}),
          limit: q.limit ?? 100,
        });
        return {
          predictions: predictions.map(predictionJson),
        };
      },
    );

    app.get<{
      Querystring: RangeQuery & { segment?: string; by?: string; window?: string; positive?: string };
    }>(
      '/api/v1/monitoring/performance',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary:
            'Model performance on predictions with ground truth (scikit-learn definitions), overall, per segment value (by) and per window',
          querystring: {
            type: 'object',
            required: ['model'],
            additionalProperties: false,
            properties: {
              ...range,
              segment: { type: 'string', pattern: '^[^:]+:.*$', description: 'key:value, e.g. region:EU' },
              by: { type: 'string', minLength: 1, description: 'a segment key: one result per value' },
              window: {
                type: 'string',
                description:
                  'a duration of at most 366d: one result per window (1h, 1d); 10 000 windows at most',
              },
              positive: { type: 'string', description: 'the positive class of binary precision/recall/F1' },
            },
          },
          response: {
            200: { type: 'object', additionalProperties: true },
            400: errorBody,
          },
        },
      },
      async (req) => {
        const q = req.query;
        const { sinceMs, untilMs } = timeRange(q);
        const windowMs = q.window === undefined ? undefined : parseDurationInput(q.window, 'window');
        const colon = q.segment?.indexOf(':') ?? -1;
        await monitoring.checkKnown(q.model);
        return monitoring.performance({
          model: q.model,
          ...(q.version !== undefined ? { version: q.version } : {}),
          sinceMs,
          untilMs,
          ...(q.segment !== undefined
            ? { segment: { key: q.segment.slice(0, colon), value: q.segment.slice(colon + 1) } }
            : {}),
          ...(q.by !== undefined ? { by: q.by } : {}),
          ...(windowMs !== undefined ? { windowMs } : {}),
          ...(q.positive !== undefined ? { positive: q.positive } : {}),
        });
      },
    );

    app.get<{ Querystring: RangeQuery }>(
      '/api/v1/monitoring/service',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary:
            'Requests, errors (5xx), error rate and latency quantiles of a model in a range (counts are up to a minute behind)',
          querystring: {
            type: 'object',
            required: ['model'],
            additionalProperties: false,
            properties: range,
          },
          response: { 200: { type: 'object', additionalProperties: true }, 400: errorBody },
        },
      },
      async (req) => {
        const range = modelRange(req.query);
        await monitoring.checkKnown(range.model);
        return monitoring.service(range);
      },
    );

    app.get<{ Querystring: Omit<RangeQuery, 'version'> }>(
      '/api/v1/monitoring/versions',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary:
            "A model's versions side by side: requests, errors, latency, CPU seconds, cost per 1000 predictions, accuracy (or RMSE)",
          querystring: {
            type: 'object',
            required: ['model'],
            additionalProperties: false,
            properties: { model: range.model, since: range.since, until: range.until },
          },
          response: {
            200: {
              type: 'object',
              required: ['versions'],
              properties: {
                versions: { type: 'array', items: { type: 'object', additionalProperties: true } },
              },
            },
            400: errorBody,
          },
        },
      },
      async (req) => {
        const { sinceMs, untilMs } = timeRange(req.query as RangeQuery);
        await monitoring.checkKnown(req.query.model);
        return { versions: await monitoring.versions({ model: req.query.model, sinceMs, untilMs }) };
      },
    );

    app.get<{
      Querystring: RangeQuery & {
        reference?: string;
        test?: string;
        threshold?: number;
        drift_share?: number;
        multivariate?: boolean;
      };
    }>(
      '/api/v1/monitoring/drift',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary:
            "Drift of a model's logged inputs in a range against a reference, with Evidently's tests and defaults: {dataset_drift, drift_share, columns}",
          querystring: {
            type: 'object',
            required: ['model'],
            additionalProperties: false,
            properties: {
              ...range,
              reference: {
                type: 'string',
                description:
                  'training (default: the dataset version the model version was trained on), a dataset version name@n, or window:<since>..<until> (or window:<since>/<until>)',
              },
              test: {
                type: 'string',
                description: "one of Evidently's tests for every column (ks, psi, wasserstein…)",
              },
              threshold: {
                type: 'number',
                minimum: 0,
                description: "every column's threshold (a number >= 0)",
              },
              drift_share: { type: 'number', minimum: 0, maximum: 1 },
              multivariate: {
                type: 'boolean',
                description: 'also PCA reconstruction error (joint shifts per-column tests miss)',
              },
            },
          },
          response: { 200: { type: 'object', additionalProperties: true }, 400: errorBody },
        },
      },
      async (req) => {
        const q = req.query;
        const range = modelRange(q);
        const ref = q.reference ?? 'training';
        let reference: Parameters<Monitoring['driftAgainst']>[1];
        if (ref === 'training') reference = { kind: 'training' };
        else if (ref.startsWith('window:')) {
          // `window:2d..1d` (or `window:2d/1d`, as alert rules write it)
          reference = { kind: 'window', ...parseWindowReference(ref, 'reference') };
        } else reference = { kind: 'dataset', ref };
        return monitoring.driftAgainst(range, reference, {
          ...(q.test !== undefined ? { test: q.test } : {}),
          ...(q.threshold !== undefined ? { threshold: q.threshold } : {}),
          ...(q.drift_share !== undefined ? { driftShare: q.drift_share } : {}),
          ...(q.multivariate ? { multivariate: true } : {}),
        });
      },
    );

    app.get<{ Querystring: RangeQuery }>(
      '/api/v1/monitoring/profile',
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary:
            "The merged profile of a model's logged inputs and outputs (prediction.<name>) in a range, from stored window profiles",
          querystring: {
            type: 'object',
            required: ['model'],
            additionalProperties: false,
            properties: range,
          },
          response: { 200: { type: 'object', additionalProperties: true }, 400: errorBody },
        },
      },
      async (req) => {
        return (await monitoring.profile(modelRange(req.query))).summary();
      },
    );
  };
}
