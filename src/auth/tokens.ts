import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { describeValue, SlipwayError } from '../errors/index.js';
import { type Database, fromJson, type NamedMigration, now, toJson } from '../store/index.js';
import { allows, type Principal, SCOPES, type Scope } from './principal.js';

interface TokenTables {
  api_tokens: {
    id: string;
    name: string;
    secret_sha256: string;
    scopes: string;
    created_ms: number;
    created_by: string;
    expires_ms: number | null;
    revoked_ms: number | null;
    last_used_ms: number | null;
  };
}

export const tokenMigrations: NamedMigration[] = [
  {
    name: '0050-api-tokens',
    async up(db) {
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('secret_sha256', 'char(64)', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'varchar(200)', (c) => c.notNull())
        .addColumn('expires_ms', 'bigint')
        .addColumn('revoked_ms', 'bigint')
        .addColumn('last_used_ms', 'bigint')
        .execute();
    },
  },
];

/** What a token looks like to anyone who lists them: never its secret. */
export interface TokenInfo {
  id: string;
  name: string;
  scopes: Scope[];
  createdMs: number;
  createdBy: string;
  expiresMs: number | null;
  revokedMs: number | null;
  lastUsedMs: number | null;
}

/** The longest life a token may be given, in days (ten years). */
export const MAX_TOKEN_DAYS = 3650;

const TOKEN = /^slw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

interface Cached {
  principal: Principal;
  expiresMs: number | null;
  /** When the cache entry must be checked against the database again. */
  recheckAt: number;
}

/**
 * API tokens with scopes, stored as SHA-256 of their secret (a token is 256 random bits, so a
 * fast hash is enough; it is shown once, on creation). Verified tokens are cached for
 * `cacheMs`, so the inference path does not query the database per request; a revocation takes
 * effect on every replica within that time.
 *
 * @example
 *   const { token } = await tokens.create({ name: 'ci', scopes: ['read', 'write'] }, 'cli:alice');
 *   const who = await tokens.authenticate(`Bearer ${token}`, 'write');
 */
export class TokenStore {
  private readonly db: Kysely<TokenTables>;
  private readonly cache = new Map<string, Cached>();

  constructor(
    database: Database,
    private readonly options: { cacheMs?: number } = {},
  ) {
    this.db = database.as<TokenTables>();
  }

  /**
   * Creates a token. Every field is checked as sent (no coercion) and a bad one is a 400 naming
   * it by its wire name: `name`, `scopes`, `expires_in_days`.
   */
  async create(
    spec: { name: string; scopes: readonly string[]; expiresInDays?: number },
    actor: string,
  ): Promise<{ token: string; info: TokenInfo }> {
    const raw = spec.name as unknown;
    const name = typeof raw === 'string' ? raw.trim() : '';
    if (!name || name.length > 200) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        "token 'name' must be a string of 1 to 200 characters",
      );
    }
    // PostgreSQL cannot store NUL in text; SQLite would, so refuse it on both.
    if (name.includes('\0'))
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "token 'name' must not contain NUL");
    const scopes = parseScopes(spec.scopes);
    const days = spec.expiresInDays as unknown;
    if (
      days !== undefined &&
      (typeof days !== 'number' || !Number.isFinite(days) || days <= 0 || days > MAX_TOKEN_DAYS)
    ) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `'expires_in_days' must be a number above 0 and at most ${MAX_TOKEN_DAYS}, got ${describeValue(days)}`,
      );
    }
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const createdMs = now();
    // Whole milliseconds, as the bigint column and every reader expect; at least 1 ms ahead.
    const expiresMs =
      days === undefined ? null : createdMs + Math.max(1, Math.round((days as number) * 86_400_000));
    await this.db
      .insertInto('api_tokens')
      .values({
        id,
        name,
        secret_sha256: sha256(secret),
        scopes: toJson(scopes),
        created_ms: createdMs,
        created_by: actor,
        expires_ms: expiresMs,
        revoked_ms: null,
        last_used_ms: null,
      })
      .execute();
    return {
      token: `slw_${id}_${secret}`,
      info: { id, name, scopes, createdMs, createdBy: actor, expiresMs, revokedMs: null, lastUsedMs: null },
    };
  }

  async list(): Promise<TokenInfo[]> {
    const rows = await this.db.selectFrom('api_tokens').selectAll().orderBy('created_ms').execute();
    return rows.map(toInfo);
  }

  /** Revokes a token by id; it stops working everywhere within the cache period. */
  async revoke(id: string): Promise<TokenInfo> {
    // Revoking twice keeps the first revocation time.
    await this.db
      .updateTable('api_tokens')
      .set({ revoked_ms: now() })
      .where('id', '=', id)
      .where('revoked_ms', 'is', null)
      .execute();
    const row = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', `no token with id '${id}'`);
    for (const [k, v] of this.cache) if (v.principal.tokenId === id) this.cache.delete(k);
    return toInfo(row);
  }

  /**
   * The principal an `Authorization` header names, if it may use `scope`. Accepts
   * `Bearer <token>` (MLFLOW_TRACKING_TOKEN) and `Basic` with the token as the password
   * (MLFLOW_TRACKING_USERNAME/PASSWORD). Synchronous when the token is cached.
   */
  authenticate(header: string | undefined, scope: Scope): Principal | Promise<Principal> {
    const token = tokenFrom(header);
    const t = Date.now();
    const cached = this.cache.get(token);
    if (cached && cached.recheckAt > t && (cached.expiresMs === null || cached.expiresMs > t)) {
      return checkScope(cached.principal, scope);
    }
    return this.lookup(token, scope);
  }

  private async lookup(token: string, scope: Scope): Promise<Principal> {
    const m = TOKEN.exec(token);
    if (!m) throw unauthenticated('the token is not a Slipway API token (slw_…)');
    const row = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', m[1]!).executeTakeFirst();
    const digest = Buffer.from(sha256(m[2]!), 'hex');
    if (!row || !timingSafeEqual(digest, Buffer.from(row.secret_sha256, 'hex'))) {
      throw unauthenticated('the token is not valid');
    }
    const t = now();
    if (row.revoked_ms !== null) throw unauthenticated(`token '${row.name}' was revoked`);
    if (row.expires_ms !== null && row.expires_ms <= t)
      throw unauthenticated(`token '${row.name}' has expired`);
    const principal: Principal = {
      name: row.name,
      scopes: parseScopes(fromJson(row.scopes, [])),
      tokenId: row.id,
    };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(token, {
      principal,
      expiresMs: row.expires_ms,
      recheckAt: t + (this.options.cacheMs ?? 5000),
    });
    // Last use is a hint for people auditing tokens; it must not slow the request.
    this.db
      .updateTable('api_tokens')
      .set({ last_used_ms: t })
      .where('id', '=', row.id)
      .execute()
      .catch(() => undefined);
    return checkScope(principal, scope);
  }
}

function checkScope(principal: Principal, scope: Scope): Principal {
  if (!allows(principal.scopes, scope)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_FORBIDDEN',
      `token '${principal.name}' has scopes [${principal.scopes.join(', ')}]; this endpoint needs '${scope}'`,
    );
  }
  return principal;
}

function tokenFrom(header: string | undefined): string {
  if (!header) throw unauthenticated('this endpoint needs an API token: Authorization: Bearer <token>');
  const space = header.indexOf(' ');
  const kind = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (kind === 'bearer' && value) return value;
  if (kind === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0 && colon < decoded.length - 1) return decoded.slice(colon + 1);
  }
  throw unauthenticated(
    'the Authorization header must be `Bearer <token>` or Basic with the token as password',
  );
}

function unauthenticated(message: string): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_UNAUTHENTICATED', message);
}

export function parseScopes(raw: readonly unknown[] | unknown): Scope[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `'scopes' must list one or more of ${SCOPES.join(', ')}`,
    );
  }
  const out = new Set<Scope>();
  for (const s of raw) {
    if (typeof s !== 'string' || !SCOPES.includes(s as Scope)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `'scopes': unknown scope ${JSON.stringify(s)}; known: ${SCOPES.join(', ')}`,
      );
    }
    out.add(s as Scope);
  }
  return SCOPES.filter((s) => out.has(s));
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function toInfo(row: TokenTables['api_tokens']): TokenInfo {
  return {
    id: row.id,
    name: row.name,
    scopes: fromJson<Scope[]>(row.scopes, []),
    createdMs: wholeMs(row.created_ms) ?? 0,
    createdBy: row.created_by,
    expiresMs: wholeMs(row.expires_ms),
    revokedMs: wholeMs(row.revoked_ms),
    lastUsedMs: wholeMs(row.last_used_ms),
  };
}

/**
 * A stored time as whole milliseconds. Older versions could store a fraction (an expiry of
 * 1e-9 days), which the integer wire schema cannot answer; such a row must still list.
 */
function wholeMs(v: number | string | null): number | null {
  if (v === null) return null;
  const n = Math.round(Number(v));
  return Number.isFinite(n) ? n : null;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}
