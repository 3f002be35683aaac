/**
 * API tokens: 256 random bits, written `ferry_<base64url>`. The node keeps only the SHA-256 of
 * a token, so a copy of the database does not hand out access; the token itself is shown once.
 */
import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'ferry_';

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function tokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
