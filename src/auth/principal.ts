/**
 * Who is calling and what they may do. Scopes nest: `admin` ⊃ `write` ⊃ `read`; `predict` is
 * separate (inference only) and implied by `admin`.
 */
export type Scope = 'read' | 'predict' | 'write' | 'admin';

export const SCOPES: readonly Scope[] = ['read', 'predict', 'write', 'admin'];

export interface Principal {
  /** Recorded as the actor in the audit log: the token's name, or `anonymous` without auth. */
  name: string;
  scopes: readonly Scope[];
  /** Id of the token used, when one was. */
  tokenId?: string;
}

export const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous', scopes: SCOPES });

/** True when a principal holding `held` may call an endpoint that needs `needed`. */
export function allows(held: readonly Scope[], needed: Scope): boolean {
  if (held.includes('admin')) return true;
  if (needed === 'read') return held.includes('read') || held.includes('write');
  return held.includes(needed);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set before every handler; `anonymous` with every scope when auth is off. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The scope a route needs. Routes without one are open (health, version, docs). */
    scope?: Scope;
  }
}
