import type { FastifyPluginAsync } from 'fastify';
import { SlipwayError } from '../../errors/index.js';
import {
  type FeedbackInput,
  type Monitoring,
  parseDuration,
  parseTime,
  predictionJson,
} from '../../monitoring/index.js';

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;

const feedbackItem = {
  type: 'object',
  required: ['request_id', 'ground_truth'],
  additionalProperties: false,
  properties: {
    request_id: { type: 'string', minLength: 1, maxLength: 256 },
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
  since: { type: 'string', description: 'ISO date-time, epoch ms, or a duration ago (1h); default 1d' },
  until: { type: 'string', description: 'ISO date-time, epoch ms, or a duration ago; default now' },
} as const;

type RangeQuery = { model: string; version?: string; since?: string; until?: string };

function timeRange(q: RangeQuery): { sinceMs: number; untilMs: number } {
  const now = Date.now();
  const sinceMs = q.since === undefined ? now - 86_400_000 : parseTime(q.since, 'since', now);
  const untilMs = q.until === undefined ? now + 1 : parseTime(q.until, 'until', now);
  if (sinceMs >= untilMs) throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'since must be before until');
  return { sinceMs, untilMs };
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
    app.post<{ Body: FeedbackInput | FeedbackInput[] | { feedback: FeedbackInput[] } }>(
      '/v1/feedback',
      {
        config: { scope: 'predict' },
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
      async (req) => {
        const b = req.body;
        const items = Array.isArray(b) ? b : 'feedback' in b ? b.feedback : [b];
        return monitoring.recordFeedback(items);
      },
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
        const predictions = await monitoring.predictions({
          ...(q.model !== undefined ? { model: q.model } : {}),
          ...(q.version !== undefined ? { version: q.version } : {}),
          ...(q.request_id !== undefined ? { requestId: q.request_id } : {}),
          ...(q.since !== undefined ? { sinceMs: parseTime(q.since, 'since', now) } : {}),
          ...(q.until !== undefined ? { untilMs: parseTime(q.until, 'until', now) } : {}),
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
              window: { type: 'string', description: 'a duration: one result per window (1h, 1d)' },
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
        const windowMs = q.window === undefined ? undefined : parseDuration(q.window, 'window');
        if (windowMs !== undefined && (untilMs - sinceMs) / windowMs > 10_000) {
          throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'window: at most 10 000 windows per request');
        }
        const colon = q.segment?.indexOf(':') ?? -1;
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
        return monitoring.service(modelRange(req.query));
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
              threshold: { type: 'number' },
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
          const [a, b] = ref.slice(7).split(ref.includes('..') ? '..' : '/');
          if (a === undefined || b === undefined || a === '' || b === '') {
            throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'reference must be window:<since>..<until>');
          }
          const now = Date.now();
          reference = {
            kind: 'window',
            sinceMs: parseTime(a, 'reference since', now),
            untilMs: parseTime(b, 'reference until', now),
          };
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
