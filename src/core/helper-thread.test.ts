import { afterEach, describe, expect, it } from 'vitest';
import { defineHelperJob, helperThread, runOnHelper } from './helper-thread.js';

describe('the helper thread', () => {
  const defaultIdle = helperThread.stopAfterMs;
  afterEach(() => {
    helperThread.stopAfterMs = defaultIdle;
  });

  it('runs jobs of several kinds on one thread, a kind defined after it started too', async () => {
    defineHelperJob('test-thread-id', `((message, reply) => reply({ thread: require('node:worker_threads').threadId, echo: message.n }))`);
    const first = await runOnHelper<{ thread: number; echo: number }>('test-thread-id', { n: 1 });
    expect(first.echo).toBe(1);
    expect(helperThread.running).toBe(true);
    defineHelperJob('test-double', `((message, reply) => reply({ thread: require('node:worker_threads').threadId, twice: message.n * 2 }))`);
    const [second, doubled] = await Promise.all([
      runOnHelper<{ thread: number; echo: number }>('test-thread-id', { n: 2 }),
      runOnHelper<{ thread: number; twice: number }>('test-double', { n: 21 }),
    ]);
    expect(second).toEqual({ thread: first.thread, echo: 2 });
    expect(doubled).toEqual({ thread: first.thread, twice: 42 });
  });

  it('a kind nobody defined is refused, and a handler that throws fails its caller; the next job gets a fresh thread', async () => {
    await expect(runOnHelper('test-undefined', {})).rejects.toThrow(/no helper job/);
    defineHelperJob('test-throws', `(() => { throw new Error('broken handler'); })`);
    defineHelperJob('test-ok', `((message, reply) => reply('ok'))`);
    await expect(runOnHelper('test-throws', {})).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(await runOnHelper('test-ok', {})).toBe('ok');
  });

  it('stops when idle, and starts again (with every kind) for the next job', async () => {
    helperThread.stopAfterMs = 30;
    defineHelperJob('test-ok', `((message, reply) => reply('ok'))`);
    expect(await runOnHelper('test-ok', {})).toBe('ok');
    await new Promise((r) => setTimeout(r, 200));
    expect(helperThread.running).toBe(false);
    expect(await runOnHelper('test-ok', {})).toBe('ok');
  });
});
