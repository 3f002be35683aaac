import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deviceIdFromCertificate, formatDeviceId, parseDeviceId, shortDeviceId } from './device-id.js';
import { isFerryError } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const FORMAT = /^[A-Z2-7]{7}(-[A-Z2-7]{7}){7}$/;

/** RFC 4648 base32 without padding: the reference for the data characters. */
function base32(bytes: Buffer): string {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  while (bits.length % 5) bits += '0';
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += ALPHABET[parseInt(bits.slice(i, i + 5), 2)];
  return out;
}

function expectInvalid(text: string, reason: RegExp): void {
  try {
    parseDeviceId(text);
  } catch (err) {
    expect(isFerryError(err, 'INVALID_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(reason);
    return;
  }
  throw new Error(`accepted ${text}`);
}

const cert = Buffer.from('a certificate, DER in real life');
const id = deviceIdFromCertificate(cert);

describe('device IDs', () => {
  it('are eight dash-separated groups of seven base32 characters', () => {
    expect(id).toMatch(FORMAT);
    expect(id).toHaveLength(63);
  });

  it('are the SHA-256 of the certificate, in base32, with a check character after every 13', () => {
    const plain = base32(createHash('sha256').update(cert).digest());
    expect(plain).toHaveLength(52);
    const compact = id.replace(/-/g, '');
    for (let g = 0; g < 4; g++) expect(compact.slice(g * 14, g * 14 + 13)).toBe(plain.slice(g * 13, g * 13 + 13));
    expect(formatDeviceId(createHash('sha256').update(cert).digest())).toBe(id);
  });

  it('are deterministic and differ between certificates', () => {
    expect(deviceIdFromCertificate(Buffer.from(cert))).toBe(id);
    expect(deviceIdFromCertificate(new Uint8Array(cert))).toBe(id);
    expect(deviceIdFromCertificate(Buffer.from('another certificate'))).not.toBe(id);
  });

  it('accept a known Syncthing device ID (same base32 + Luhn check scheme)', () => {
    const syncthing = 'P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2';
    expect(parseDeviceId(syncthing)).toBe(syncthing);
  });

  it('round-trip through parseDeviceId', () => {
    expect(parseDeviceId(id)).toBe(id);
    for (let i = 0; i < 20; i++) {
      const other = deviceIdFromCertificate(Buffer.from(`cert ${i}`));
      expect(parseDeviceId(other)).toBe(other);
    }
  });

  it('accept lowercase, no dashes, spaces and surrounding whitespace', () => {
    expect(parseDeviceId(id.toLowerCase())).toBe(id);
    expect(parseDeviceId(id.replace(/-/g, ''))).toBe(id);
    expect(parseDeviceId(id.replace(/-/g, ' '))).toBe(id);
    expect(parseDeviceId(`  ${id.toLowerCase().replace(/-/g, '')}\n`)).toBe(id);
  });

  it('reject every single-character typo (any position, any substitute)', () => {
    const compact = id.replace(/-/g, '');
    let rejected = 0;
    for (let i = 0; i < compact.length; i++) {
      for (const c of ALPHABET) {
        if (c === compact[i]) continue;
        const typo = compact.slice(0, i) + c + compact.slice(i + 1);
        expect(() => parseDeviceId(typo), `typo at ${i}: ${c}`).toThrow(/check character/);
        rejected++;
      }
    }
    expect(rejected).toBe(56 * 31);
  });

  it('reject wrong lengths and characters outside base32', () => {
    const compact = id.replace(/-/g, '');
    expectInvalid(compact.slice(0, 55), /56 base32/);
    expectInvalid(compact + 'A', /56 base32/);
    expectInvalid('', /56 base32/);
    expectInvalid(compact.slice(0, 55) + '1', /56 base32/);
    expectInvalid(compact.slice(0, 55) + '0', /56 base32/);
    expectInvalid(compact.slice(0, 55) + '8', /56 base32/);
    expectInvalid(compact.slice(0, 55) + '=', /56 base32/);
  });

  it('shortDeviceId is the first group', () => {
    expect(shortDeviceId(id)).toBe(id.slice(0, 7));
    expect(shortDeviceId(id)).toMatch(/^[A-Z2-7]{7}$/);
  });
});
