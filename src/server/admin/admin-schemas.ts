/**
 * JSON schemas of the admin API (`/api/v1/…`) and the conversions from registry objects to its
 * wire shape (snake_case, times in ms). The schemas validate requests and generate /openapi.json.
 */
import {
  type AliasInfo,
  type AliasMove,
  type AuditEntry,
  CARD_SECTION_KEYS,
  type CardSectionKey,
  type ModelCard,
  type ModelVersion,
  type RegisteredModel,
} from '../../registry/index.js';

export const MODEL_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';

export const errorBody = {
  type: 'object',
  required: ['error', 'code'],
  properties: {
    error: { type: 'string', description: 'What went wrong, naming the field at fault' },
    code: { type: 'string', description: 'A stable SLIPWAY_ERR_… code (docs/ERRORS.md)' },
  },
} as const;

/** The error answers every route can give, besides its own. */
export const commonErrors = { 400: errorBody, 401: errorBody, 403: errorBody } as const;

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const numberMap = { type: 'object', additionalProperties: { type: 'number' } } as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;

const tensor = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: {
    name: { type: 'string' },
    datatype: {
      type: 'string',
      description:
        'Open Inference Protocol datatype (FP32, INT64, BYTES, …); NON_TENSOR for sequences and maps',
    },
    shape: { type: 'array', items: { type: 'integer' }, description: '-1 marks a dynamic dimension' },
  },
} as const;

const signature = {
  type: ['object', 'null'],
  description: 'Inputs and outputs read from the ONNX graph',
  required: ['inputs', 'outputs'],
  properties: {
    inputs: { type: 'array', items: tensor },
    outputs: { type: 'array', items: tensor },
  },
} as const;

const datasetRef = {
  type: 'object',
  required: ['ref', 'name', 'version', 'uri'],
  properties: {
    ref: { type: 'string', description: 'As given: name@version or a URI' },
    name: nullableString,
    version: nullableString,
    uri: nullableString,
  },
} as const;

export const registeredModel = {
  type: 'object',
  required: [
    'name',
    'description',
    'tags',
    'creator',
    'created_ms',
    'updated_ms',
    'latest_version',
    'version_count',
    'aliases',
  ],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    tags: stringMap,
    creator: { type: 'string' },
    created_ms: { type: 'integer' },
    updated_ms: { type: 'integer' },
    latest_version: { ...nullableInteger, description: 'Highest READY version; null before the first' },
    version_count: { type: 'integer' },
    aliases: { type: 'object', additionalProperties: { type: 'integer' }, description: 'alias → version' },
  },
} as const;

export const modelVersion = {
  type: 'object',
  required: [
    'name',
    'version',
    'status',
    'description',
    'tags',
    'metrics',
    'source',
    'run_id',
    'run_link',
    'logged_model_id',
    'stage',
    'artifact_path',
    'model_file',
    'signature',
    'training_data',
    'evaluation_data',
    'aliases',
    'creator',
    'created_ms',
    'updated_ms',
  ],
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    status: { type: 'string', enum: ['PENDING_REGISTRATION', 'READY', 'FAILED_REGISTRATION'] },
    description: { type: 'string' },
    tags: stringMap,
    metrics: numberMap,
    source: { type: 'string' },
    run_id: nullableString,
    run_link: nullableString,
    logged_model_id: nullableString,
    stage: { type: 'string', enum: ['None', 'Staging', 'Production', 'Archived'] },
    artifact_path: {
      type: 'string',
      description: "The version's immutable folder: registry/<name>/<version>",
    },
    model_file: {
      type: ['object', 'null'],
      required: ['path', 'sha256', 'size'],
      properties: { path: { type: 'string' }, sha256: { type: 'string' }, size: { type: 'integer' } },
    },
    signature,
    training_data: { type: 'array', items: datasetRef },
    evaluation_data: { type: 'array', items: datasetRef },
    aliases: { type: 'array', items: { type: 'string' } },
    creator: { type: 'string' },
    created_ms: { type: 'integer' },
    updated_ms: { type: 'integer' },
  },
} as const;

export const aliasInfo = {
  type: 'object',
  required: ['alias', 'version', 'updated_ms', 'updated_by'],
  properties: {
    alias: { type: 'string' },
    version: { type: 'integer' },
    updated_ms: { type: 'integer' },
    updated_by: { type: 'string' },
  },
} as const;

export const aliasMove = {
  type: 'object',
  required: ['seq', 'model', 'alias', 'from_version', 'to_version', 'actor', 'at_ms'],
  properties: {
    seq: { type: 'integer', description: 'Audit sequence number of the move; 0 when nothing changed' },
    model: { type: 'string' },
    alias: { type: 'string' },
    from_version: nullableInteger,
    to_version: nullableInteger,
    actor: { type: 'string' },
    at_ms: { type: 'integer' },
  },
} as const;

export const auditEntry = {
  type: 'object',
  required: ['seq', 'at_ms', 'actor', 'action', 'target', 'model', 'version', 'alias', 'details'],
  properties: {
    seq: { type: 'integer' },
    at_ms: { type: 'integer' },
    actor: { type: 'string' },
    action: { type: 'string', description: 'model.create, version.create, alias.set, card.update, …' },
    target: { type: 'string' },
    model: nullableString,
    version: nullableInteger,
    alias: nullableString,
    details: { type: 'object', additionalProperties: true },
  },
} as const;

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const SECTION_WIRE_KEYS = CARD_SECTION_KEYS.map(snake);

const sectionsOut = {
  type: 'object',
  required: SECTION_WIRE_KEYS,
  properties: Object.fromEntries(SECTION_WIRE_KEYS.map((k) => [k, { type: 'string' }])),
} as const;

export const sectionsIn = {
  type: 'object',
  description:
    'Sections of Mitchell et al.; camelCase or kebab-case names are accepted too, unknown names are refused',
  properties: Object.fromEntries(SECTION_WIRE_KEYS.map((k) => [k, { type: 'string', maxLength: 100_000 }])),
  additionalProperties: { type: 'string' },
} as const;

export const modelCard = {
  type: 'object',
  required: ['name', 'sections', 'updated_ms', 'updated_by', 'facts'],
  properties: {
    name: { type: 'string' },
    sections: sectionsOut,
    updated_ms: nullableInteger,
    updated_by: nullableString,
    facts: {
      type: 'object',
      description: 'What the registry knows: filled in, not edited',
      required: [
        'name',
        'description',
        'creator',
        'created_ms',
        'updated_ms',
        'tags',
        'aliases',
        'versions',
        'signature',
      ],
      properties: {
        name: { type: 'string' },
        description: { type: 'string' },
        creator: { type: 'string' },
        created_ms: { type: 'integer' },
        updated_ms: { type: 'integer' },
        tags: stringMap,
        aliases: { type: 'object', additionalProperties: { type: 'integer' } },
        versions: {
          type: 'array',
          items: {
            type: 'object',
            required: [
              'version',
              'status',
              'created_ms',
              'creator',
              'description',
              'source',
              'run_id',
              'sha256',
              'metrics',
              'training_data',
              'evaluation_data',
              'aliases',
            ],
            properties: {
              version: { type: 'integer' },
              status: { type: 'string' },
              created_ms: { type: 'integer' },
              creator: { type: 'string' },
              description: { type: 'string' },
              source: { type: 'string' },
              run_id: nullableString,
              sha256: nullableString,
              metrics: numberMap,
              training_data: { type: 'array', items: { type: 'string' } },
              evaluation_data: { type: 'array', items: { type: 'string' } },
              aliases: { type: 'array', items: { type: 'string' } },
            },
          },
        },
        signature: {
          type: ['object', 'null'],
          required: ['version', 'inputs', 'outputs'],
          properties: {
            version: { type: 'integer' },
            inputs: { type: 'array', items: tensor },
            outputs: { type: 'array', items: tensor },
          },
        },
      },
    },
  },
} as const;

export function wireModel(m: RegisteredModel) {
  return {
    name: m.name,
    description: m.description,
    tags: m.tags,
    creator: m.creator,
    created_ms: m.createdMs,
    updated_ms: m.updatedMs,
    latest_version: m.latestVersion,
    version_count: m.versionCount,
    aliases: m.aliases,
  };
}

export function wireVersion(v: ModelVersion) {
  return {
    name: v.name,
    version: v.version,
    status: v.status,
    description: v.description,
    tags: v.tags,
    metrics: v.metrics,
    source: v.source,
    run_id: v.runId,
    run_link: v.runLink,
    logged_model_id: v.loggedModelId,
    stage: v.stage,
    artifact_path: v.artifactPath,
    model_file: v.modelFile,
    signature: v.signature,
    training_data: v.trainingData,
    evaluation_data: v.evaluationData,
    aliases: v.aliases,
    creator: v.creator,
    created_ms: v.createdMs,
    updated_ms: v.updatedMs,
  };
}

export function wireAlias(a: AliasInfo) {
  return { alias: a.alias, version: a.version, updated_ms: a.updatedMs, updated_by: a.updatedBy };
}

export function wireMove(m: AliasMove) {
  return {
    seq: m.seq,
    model: m.model,
    alias: m.alias,
    from_version: m.fromVersion,
    to_version: m.toVersion,
    actor: m.actor,
    at_ms: m.atMs,
  };
}

export function wireAudit(e: AuditEntry) {
  return {
    seq: e.seq,
    at_ms: e.atMs,
    actor: e.actor,
    action: e.action,
    target: e.target,
    model: e.model,
    version: e.version,
    alias: e.alias,
    details: e.details,
  };
}

export function wireCard(c: ModelCard) {
  const f = c.facts;
  return {
    name: c.name,
    sections: Object.fromEntries(
      (Object.keys(c.sections) as CardSectionKey[]).map((k) => [snake(k), c.sections[k]]),
    ),
    updated_ms: c.updatedMs,
    updated_by: c.updatedBy,
    facts: {
      name: f.name,
      description: f.description,
      creator: f.creator,
      created_ms: f.createdMs,
      updated_ms: f.updatedMs,
      tags: f.tags,
      aliases: f.aliases,
      versions: f.versions.map((v) => ({
        version: v.version,
        status: v.status,
        created_ms: v.createdMs,
        creator: v.creator,
        description: v.description,
        source: v.source,
        run_id: v.runId,
        sha256: v.sha256,
        metrics: v.metrics,
        training_data: v.trainingData,
        evaluation_data: v.evaluationData,
        aliases: v.aliases,
      })),
      signature: f.signature,
    },
  };
}
