import { describe, expect, it } from 'vitest';
import { formatHostPort, isLanAddress, parseHostPort } from './address.js';

describe('peer addresses', () => {
  it('parse host:port and [ipv6]:port, and format them back', () => {
    expect(parseHostPort('10.0.0.2:22100')).toEqual({ host: '10.0.0.2', port: 22100 });
    expect(parseHostPort('[fe80::1]:22100')).toEqual({ host: 'fe80::1', port: 22100 });
    expect(formatHostPort('::ffff:192.168.1.4', 22100)).toBe('192.168.1.4:22100');
    expect(formatHostPort('fd00::7', 22100)).toBe('[fd00::7]:22100');
    for (const bad of ['10.0.0.2', '10.0.0.2:0', '[nothost]:1', 'a b:1']) expect(() => parseHostPort(bad), bad).toThrow(/invalid peer address/);
  });

  it('tell peers on a local network (loopback, private, link-local, unique-local) from the rest', () => {
    const lan = ['127.0.0.1:1', '10.1.2.3:1', '172.16.0.1:1', '172.31.255.254:1', '192.168.178.20:1', '169.254.10.1:1', '[::1]:1', '[fe80::1]:1', '[fd12:3456::1]:1', '[::ffff:192.168.1.4]:1', 'localhost:1'];
    const internet = ['8.8.8.8:1', '172.15.0.1:1', '172.32.0.1:1', '192.169.0.1:1', '100.64.0.1:1', '[2001:db8::1]:1', '[2a00:1450::1]:1', 'example.com:1', 'not an address'];
    expect(lan.filter((a) => !isLanAddress(a))).toEqual([]);
    expect(internet.filter((a) => isLanAddress(a))).toEqual([]);
  });
});
