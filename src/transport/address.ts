/**
 * Peer addresses as text: "host:port", with IPv6 literals in brackets ("[::1]:22000"), the
 * form users type in config and the form the transport reports back for remote ends.
 */
import { isIPv6 } from 'node:net';
import { FerryError } from '../core/errors.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses "host:port" or "[ipv6]:port"; INVALID_CONFIG when it is neither. */
export function parseHostPort(address: string): HostPort {
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535 || (address.startsWith('[') && !isIPv6(match[1]!))) {
    throw new FerryError('INVALID_CONFIG', `invalid peer address ${JSON.stringify(address)}: expected host:port or [ipv6]:port`);
  }
  return { host: match[1]!, port };
}

export function formatHostPort(host: string, port: number): string {
  const plain = host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host; // IPv4-mapped IPv6
  return isIPv6(plain) ? `[${plain}]:${port}` : `${plain}:${port}`;
}

/**
 * Whether a peer at `address` ("host:port") is on a local network: loopback, the private IPv4
 * ranges, link-local, and IPv6 unique-local addresses. Rate limits leave such peers alone
 * unless told otherwise, as Syncthing does: the limits are for the link to the internet.
 */
export function isLanAddress(address: string): boolean {
  let host: string;
  try {
    host = parseHostPort(address).host.toLowerCase();
  } catch {
    return false;
  }
  if (host.startsWith('::ffff:') && host.includes('.')) host = host.slice(7);
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  if (!isIPv6(host.split('%')[0]!)) return host === 'localhost';
  return host === '::1' || /^fe[89ab]/.test(host) || /^f[cd]/.test(host);
}
