/**
 * Device IDs: the SHA-256 of a device's certificate (DER), written in base32 with a Luhn
 * check character after each 13 characters, in eight dash-separated groups of seven
 * (the form Syncthing users know). A typo in a device ID is caught by the check characters.
 */
import { createHash } from 'node:crypto';
import { FerryError } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function deviceIdFromCertificate(der: Buffer | Uint8Array): string {
  return formatDeviceId(createHash('sha256').update(der).digest());
}

export function formatDeviceId(sha256: Buffer): string {
  const plain = base32(sha256); // 52 characters
  let withChecks = '';
  for (let i = 0; i < 52; i += 13) {
    const group = plain.slice(i, i + 13);
    withChecks += group + luhn32(group);
  }
  return withChecks.match(/.{7}/g)!.join('-');
}

/** Canonical form of a device ID typed by a user or received from a peer, or INVALID_CONFIG. */
export function parseDeviceId(text: string): string {
  const compact = text.trim().toUpperCase().replace(/[-\s]/g, '');
  if (!/^[A-Z2-7]{56}$/.test(compact)) {
    throw new FerryError('INVALID_CONFIG', `invalid device ID ${JSON.stringify(text)}: expected 56 base32 characters`);
  }
  for (let i = 0; i < 56; i += 14) {
    const group = compact.slice(i, i + 13);
    if (luhn32(group) !== compact[i + 13]) {
      throw new FerryError('INVALID_CONFIG', `invalid device ID ${JSON.stringify(text)}: check character mismatch (typo?)`);
    }
  }
  return compact.match(/.{7}/g)!.join('-');
}

/** The short ID used in version vectors and conflict file names: the first group. */
export function shortDeviceId(deviceId: string): string {
  return deviceId.slice(0, 7);
}

function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function luhn32(s: string): string {
  let factor = 1;
  let sum = 0;
  for (const c of s) {
    const code = ALPHABET.indexOf(c);
    let addend = factor * code;
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / 32) + (addend % 32);
    sum += addend;
  }
  return ALPHABET[(32 - (sum % 32)) % 32]!;
}
