import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceIdFromCertificate, parseDeviceId } from '../core/device-id.js';
import { isFerryError } from '../core/errors.js';
import { CERT_FILE, KEY_FILE, createIdentity, loadIdentity, loadOrCreateIdentity } from './identity.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-identity-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('identity', () => {
  it('creates an ECDSA P-256 self-signed certificate valid for 20 years, named as asked', async () => {
    const identity = await createIdentity('laptop, "work"');
    const cert = new X509Certificate(identity.certPem);
    expect(cert.raw.equals(identity.certDer)).toBe(true);
    expect(cert.subject).toBe('CN=laptop\\, \\"work\\"'); // node prints RFC 4514 escapes
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * 86_400_000);
    expect(years).toBeGreaterThan(19.9);
    expect(identity.deviceId).toBe(deviceIdFromCertificate(cert.raw));
    expect(parseDeviceId(identity.deviceId)).toBe(identity.deviceId);
    expect(new X509Certificate((await createIdentity('')).certPem).subject).toContain('CN=ferry');
  });

  it('creates the identity once, with a private key file only the owner can read', async () => {
    const dir = join(await tempDir(), 'home');
    const first = await loadOrCreateIdentity(dir, 'n1');
    expect(first.created).toBe(true);
    expect((await stat(join(dir, KEY_FILE))).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateIdentity(dir, 'other name');
    expect(second.created).toBe(false);
    expect(second.identity.deviceId).toBe(first.identity.deviceId);
    expect(second.identity.certDer.equals(first.identity.certDer)).toBe(true);
    expect((await loadIdentity(dir)).keyPem).toBe(first.identity.keyPem);
  });

  it('reports a missing identity as NOT_INITIALIZED and a half-present one without replacing it', async () => {
    const dir = await tempDir();
    await expect(loadIdentity(dir)).rejects.toSatisfy((e) => isFerryError(e, 'NOT_INITIALIZED'));
    await loadOrCreateIdentity(dir);
    const cert = await readFile(join(dir, CERT_FILE), 'utf8');
    await unlink(join(dir, CERT_FILE));
    await expect(loadOrCreateIdentity(dir)).rejects.toSatisfy((e) => isFerryError(e, 'INVALID_CONFIG'));
    await writeFile(join(dir, CERT_FILE), cert);
    expect((await loadOrCreateIdentity(dir)).created).toBe(false);
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const dir = await tempDir();
    await loadOrCreateIdentity(dir);
    await writeFile(join(dir, KEY_FILE), (await createIdentity('x')).keyPem);
    await expect(loadIdentity(dir)).rejects.toSatisfy((e) => isFerryError(e, 'INVALID_CONFIG') && /does not belong/.test(e.message));
  });
});
