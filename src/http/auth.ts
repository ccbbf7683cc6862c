// Access control, off by default so that the old clients work unchanged. When
// on, a request may carry `Authorization: Bearer <key>`; each route names the
// role it needs. A session's full token alone still lets a device read, poll
// and push its own session, as the old clients only know the token.

import type { Context, Middleware } from 'koa';
import type { Role } from '../store/database.js';
import type { KeyStore } from '../store/key-store.js';
import { HttpError } from './errors.js';

const RANK: Record<Role, number> = { reader: 1, writer: 2, admin: 3 };

export interface Access {
  /** Checks the presented key (if any) and keeps it in ctx.state.key. */
  identify: Middleware;
  /** Refuses the request unless its key has `role` or a higher one (when access control is on). */
  require(ctx: Context, role: Role): void;
  /** Whether the request's key has `role` or a higher one (always, when access control is off). */
  allows(ctx: Context, role: Role): boolean;
  /** The same, as a route middleware. */
  allow(role: Role): Middleware;
}

export function createAccess({ enabled, keys }: { enabled: boolean; keys: KeyStore }): Access {
  const require = (ctx: Context, role: Role) => {
    if (!enabled) return;
    const key = ctx.state.key as { id: string; role: Role } | undefined;
    if (!key) {
      ctx.set('WWW-Authenticate', 'Bearer');
      throw new HttpError(
        401,
        `This call needs an API key with the ${role} role (Authorization: Bearer <key>).`,
        'UNAUTHORIZED',
      );
    }
    if (RANK[key.role] < RANK[role]) {
      throw new HttpError(
        403,
        `This call needs the ${role} role; the key ${key.id} is a ${key.role} key.`,
        'FORBIDDEN',
      );
    }
  };
  return {
    identify: async (ctx, next) => {
      const header = ctx.get('Authorization');
      if (enabled && header) {
        const presented = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
        const key = presented ? await keys.verifyKey(presented) : null;
        if (!key) {
          ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
          throw new HttpError(401, 'The API key is not valid: unknown, revoked or mistyped.', 'UNAUTHORIZED');
        }
        ctx.state.key = key;
      }
      await next();
    },
    require,
    allows: (ctx, role) => {
      if (!enabled) return true;
      const key = ctx.state.key as { role: Role } | undefined;
      return key !== undefined && RANK[key.role] >= RANK[role];
    },
    allow: (role) => async (ctx, next) => {
      require(ctx, role);
      await next();
    },
  };
}
