import { describe, expect, it } from 'vitest';
import { LoginThrottle } from './login-throttle.js';
import { hashPassword, passwordProblem, verifyPassword } from './password.js';

describe('LoginThrottle', () => {
  it('doubles the wait per failure for one user and address, and forgets on success', () => {
    let now = 0;
    const t = new LoginThrottle(() => now);
    expect(t.waitMs('u', '1.2.3.4')).toBe(0);
    expect(t.failed('u', '1.2.3.4')).toBe(500);
    expect(t.failed('u', '1.2.3.4')).toBe(1000);
    expect(t.failed('u', '1.2.3.4')).toBe(2000);
    expect(t.waitMs('u', '1.2.3.4')).toBe(2000);
    // Other users and other addresses are not affected.
    expect(t.waitMs('v', '1.2.3.4')).toBe(0);
    expect(t.waitMs('u', '5.6.7.8')).toBe(0);
    now = 2500;
    expect(t.waitMs('u', '1.2.3.4')).toBe(0);
    t.succeeded('u', '1.2.3.4');
    expect(t.failed('u', '1.2.3.4')).toBe(500);
    for (let i = 0; i < 40; i++) t.failed('u', '1.2.3.4');
    expect(t.waitMs('u', '1.2.3.4')).toBeLessThanOrEqual(5 * 60_000);
  });
});

describe('password hashing', () => {
  it('hashes with scrypt and a per-password salt; verifies only the right password', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horsE', a)).toBe(false);
    expect(await verifyPassword('correct horse', undefined)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
    expect(passwordProblem('short')).toMatch(/at least/);
    expect(passwordProblem('long enough')).toBeUndefined();
  });
});
