// API keys: created with a random secret that is shown once and stored only
// as its sha256; checked in constant time; revoked, never deleted.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Backend } from './backend.js';
import type { Role } from './database.js';

export const ROLES: readonly Role[] = ['admin', 'writer', 'reader'];
const KEY_FORMAT = /^wsk_([0-9a-f]{12})\.([A-Za-z0-9_-]{32})$/;

const hashOf = (secret: string) => createHash('sha256').update(secret).digest();

export interface KeyInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  revokedAt: number | null;
}

export function createKeyStore(backend: Pick<Backend, 'db' | 'write'>) {
  const { db } = backend;
  return {
    /** Creates a key; the returned `key` is the only time its secret is seen. */
    async addKey(role: Role, name: string, now: number): Promise<{ id: string; key: string }> {
      const id = randomBytes(6).toString('hex');
      const secret = randomBytes(24).toString('base64url');
      await backend.write(async ({ db: trx, tell }) => {
        await trx
          .insertInto('api_keys')
          .values({ id, name, role, secret_hash: hashOf(secret).toString('hex'), created_at: now, revoked_at: null })
          .execute();
        tell({ kind: 'keys' });
      });
      return { id, key: `wsk_${id}.${secret}` };
    },

    async listKeys(): Promise<KeyInfo[]> {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        role: r.role,
        createdAt: r.created_at,
        revokedAt: r.revoked_at,
      }));
    },

    /** Revokes a key; false when there is no such live key. */
    async revokeKey(id: string, now: number): Promise<boolean> {
      return backend.write(async ({ db: trx, tell }) => {
        const result = await trx
          .updateTable('api_keys')
          .set({ revoked_at: now })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        const revoked = Number(result.numUpdatedRows) === 1;
        if (revoked) tell({ kind: 'keys' });
        return revoked;
      });
    },

    /** The live key that `presented` is, or null. */
    async verifyKey(presented: string): Promise<{ id: string; role: Role } | null> {
      const match = KEY_FORMAT.exec(presented);
      if (!match) return null;
      const [, id, secret] = match as unknown as [string, string, string];
      const row = await db
        .selectFrom('api_keys')
        .select(['role', 'secret_hash', 'revoked_at'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || row.revoked_at !== null) return null;
      const same = timingSafeEqual(hashOf(secret), Buffer.from(row.secret_hash, 'hex'));
      return same ? { id, role: row.role } : null;
    },
  };
}

export type KeyStore = ReturnType<typeof createKeyStore>;
