/**
 * The envelope every frame header carries between two WsPeerConnections:
 *
 *   {kind: 'message', header}                     one-way
 *   {kind: 'request', id, header}                 answered by exactly one reply with the same id
 *   {kind: 'reply', id, header}                   success
 *   {kind: 'reply', id, error: {code, message}}   the handler threw; the requester gets a FerryError
 *
 * Ids are per direction, so both sides number their requests from 1. `header` is the
 * engine's own message header, carried untouched (minus the transport's `compress` hint).
 */
import { FerryError } from '../core/errors.js';

export type Envelope =
  | { kind: 'message'; header: Record<string, unknown> }
  | { kind: 'request'; id: number; header: Record<string, unknown> }
  | { kind: 'reply'; id: number; header: Record<string, unknown> }
  | { kind: 'reply'; id: number; error: { code: string; message: string } };

const WIRE_ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Whether an error code from a peer looks like one of ours (upper-case word, bounded length). */
export function isWireErrorCode(code: string): boolean {
  return WIRE_ERROR_CODE.test(code);
}

/** Takes the transport's `compress` hint out of a header so it never reaches the wire. */
export function splitHint(header: Record<string, unknown>): { header: Record<string, unknown>; compress?: boolean } {
  if (typeof header.compress !== 'boolean') return { header };
  const { compress, ...rest } = header;
  return { header: rest, compress: compress as boolean };
}

export function parseEnvelope(value: Record<string, unknown>): Envelope {
  const { kind, id } = value;
  if (kind !== 'message' && kind !== 'request' && kind !== 'reply') throw invalidEnvelope(`unknown kind ${String(JSON.stringify(kind)).slice(0, 64)}`);
  if (kind !== 'message' && !(Number.isSafeInteger(id) && (id as number) > 0)) throw invalidEnvelope(`${kind} without a valid id`);
  if (kind === 'reply' && value.error !== undefined) {
    const error = value.error as { code?: unknown; message?: unknown } | null;
    if (typeof error !== 'object' || error === null || typeof error.code !== 'string' || typeof error.message !== 'string') {
      throw invalidEnvelope('error reply without a string code and message');
    }
    return { kind, id: id as number, error: { code: error.code, message: error.message } };
  }
  const header = value.header;
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw invalidEnvelope(`${kind} without a header object`);
  const fields = header as Record<string, unknown>;
  if (kind === 'message') return { kind, header: fields };
  return kind === 'request' ? { kind, id: id as number, header: fields } : { kind, id: id as number, header: fields };
}

function invalidEnvelope(why: string): FerryError {
  return new FerryError('INVALID_MESSAGE', `invalid frame: ${why}`);
}
