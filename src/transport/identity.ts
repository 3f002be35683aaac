/**
 * A node's identity: an ECDSA P-256 key and a self-signed certificate. The device ID is the
 * SHA-256 of the certificate (core/device-id.ts), so the certificate file *is* the identity:
 * losing or regenerating it makes the node a new device to all its peers. That is why this
 * module never overwrites an existing key or certificate and refuses a half-present pair.
 */
import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { deviceIdFromCertificate } from '../core/device-id.js';
import { FerryError, errorMessage, isNotFound } from '../core/errors.js';

export interface Identity {
  readonly deviceId: string;
  /** PKCS#8 private key, PEM. */
  readonly keyPem: string;
  readonly certPem: string;
  /** The certificate as DER: the bytes the device ID is computed from. */
  readonly certDer: Buffer;
}

export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';

const VALIDITY_YEARS = 20;
/** X.520 upper bound for a common name. */
const MAX_CN_LENGTH = 64;

/**
 * The certificate library is loaded only to create an identity: it (with its ASN.1 schemas and
 * reflect-metadata) costs a running node about 20 MB of memory it never needs again.
 */
async function certificateLibrary(): Promise<typeof import('@peculiar/x509')> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  return x509;
}

export async function createIdentity(name: string): Promise<Identity> {
  const x509 = await certificateLibrary();
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  // eslint-disable-next-line no-control-regex
  const cn = (name.replace(/[\u0000-\u001f\u007f]/g, '').trim() || 'ferry').slice(0, MAX_CN_LENGTH);
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // a DER INTEGER serial must be positive
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    // The library's JSON name form splits values at commas (2.2.0), so escape the string form.
    name: `CN=${escapeDnValue(cn)}`,
    // An hour of slack for peers whose clocks run behind (peers do not check dates today,
    // but other TLS tooling a user points at the node may).
    notBefore: new Date(now - 3_600_000),
    notAfter,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  const keyPem = KeyObject.from(keys.privateKey as webcrypto.CryptoKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  const certDer = Buffer.from(cert.rawData);
  return { deviceId: deviceIdFromCertificate(certDer), keyPem, certPem: cert.toString('pem') + '\n', certDer };
}

/** RFC 4514 escaping, so a device called 'laptop, "work"' keeps its name. */
function escapeDnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

/** Reads dir/key.pem and dir/cert.pem; NOT_INITIALIZED when neither exists. */
export async function loadIdentity(dir: string): Promise<Identity> {
  const keyPath = join(dir, KEY_FILE);
  const certPath = join(dir, CERT_FILE);
  const [keyPem, certPem] = await Promise.all([readOptional(keyPath), readOptional(certPath)]);
  if (keyPem === undefined && certPem === undefined) {
    throw new FerryError('NOT_INITIALIZED', `no device identity in ${dir} (expected ${KEY_FILE} and ${CERT_FILE}); initialize the node first`, {
      data: { dir },
    });
  }
  if (keyPem === undefined || certPem === undefined) {
    const [present, missing] = keyPem === undefined ? [certPath, keyPath] : [keyPath, certPath];
    throw new FerryError(
      'INVALID_CONFIG',
      `incomplete device identity: ${present} exists but ${missing} is missing; restore it from a backup ` +
        `(creating a new identity would change this device's ID for all its peers)`,
      { data: { dir } },
    );
  }
  return parseIdentity(keyPem, certPem, dir);
}

/** Loads the identity in `dir`, creating it (and `dir`) on first start. */
export async function loadOrCreateIdentity(dir: string, name?: string): Promise<{ identity: Identity; created: boolean }> {
  try {
    return { identity: await loadIdentity(dir), created: false };
  } catch (err) {
    if (!(err instanceof FerryError && err.code === 'NOT_INITIALIZED')) throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const identity = await createIdentity(name ?? 'ferry');
  try {
    // Key first: a crash in between leaves a key without a certificate, which loadIdentity
    // reports instead of silently minting a second identity.
    await publishFile(join(dir, KEY_FILE), identity.keyPem, 0o600);
    await publishFile(join(dir, CERT_FILE), identity.certPem, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      // Another process created the identity at the same moment: theirs wins.
      return { identity: await loadIdentity(dir), created: false };
    }
    throw new FerryError('IO_ERROR', `cannot write device identity to ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  await fsyncDir(dir);
  return { identity, created: true };
}

function parseIdentity(keyPem: string, certPem: string, dir: string): Identity {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new FerryError('INVALID_CONFIG', `${join(dir, CERT_FILE)} is not a valid certificate: ${errorMessage(err)}`, { cause: err });
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (err) {
    throw new FerryError('INVALID_CONFIG', `${join(dir, KEY_FILE)} is not a valid private key: ${errorMessage(err)}`, { cause: err });
  }
  if (!matches) {
    throw new FerryError('INVALID_CONFIG', `${join(dir, KEY_FILE)} does not belong to the certificate in ${join(dir, CERT_FILE)}`);
  }
  return { deviceId: deviceIdFromCertificate(cert.raw), keyPem, certPem, certDer: cert.raw };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new FerryError('IO_ERROR', `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Writes `path` completely (temp file, fsync) and then makes it appear; EEXIST if it is already there. */
async function publishFile(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, path); // unlike rename, never replaces an existing file
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not every platform can fsync a directory; the files themselves are already synced.
  }
}
