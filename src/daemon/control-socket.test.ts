import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../core/errors.js';
import { callNode, ControlSocket, controlSocketPath } from './control-socket.js';
import type { NodeRuntimeStatus } from './node-status.js';

let home: string;
let socket: ControlSocket | undefined;
let mute: Server | undefined;

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ferry-control-'));
});

afterEach(async () => {
  await socket?.close();
  socket = undefined;
  await new Promise((r) => (mute ? mute.close(r) : r(undefined)));
  mute = undefined;
  rmSync(home, { recursive: true, force: true });
});

const live: NodeRuntimeStatus = {
  pid: 4242, running: true, listen: '127.0.0.1:22100', startedAt: '2026-12-07T10:00:00.000Z', heartbeat: 1,
  folders: { docs: { state: 'syncing', needFiles: 3, needBytes: 300, completion: 50, localFiles: 3, localBytes: 300, errors: [], conflicts: [], mode: 'send-receive', notApplied: 0, notSent: 0 } },
  peers: {},
};

describe('the control socket', () => {
  it('answers GET /v1/status with what the node says now', async () => {
    socket = await ControlSocket.listen(home, { rescan: async () => [], status: () => live, settle: async () => [] });
    expect(await callNode(home, 'GET', '/v1/status')).toEqual(live);
  });

  it('passes override and revert to the node with the folder, and its refusal back with the code', async () => {
    const asked: string[] = [];
    socket = await ControlSocket.listen(home, {
      rescan: async () => [],
      status: () => live,
      settle: async (action, folder) => {
        asked.push(`${action} ${folder}`);
        if (action === 'revert') throw new FerryError('INVALID_CONFIG', 'folder docs is send-receive');
        return ['a.txt'];
      },
    });
    expect(await callNode(home, 'POST', '/v1/override?folder=docs')).toEqual({ paths: ['a.txt'] });
    await expect(callNode(home, 'POST', '/v1/revert?folder=docs')).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: 'folder docs is send-receive' });
    await expect(callNode(home, 'GET', '/v1/override?folder=docs')).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    await expect(callNode(home, 'POST', '/v1/undo')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(asked).toEqual(['override docs', 'revert docs']);
  });

  it('a home without a running node: NOT_RUNNING', async () => {
    await expect(callNode(home, 'GET', '/v1/status')).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  });

  it('a node that does not answer in time: IO_ERROR after the timeout, not a hang', async () => {
    mute = createServer((conn) => conn.resume()); // accepts and reads, never answers
    await new Promise<void>((r) => mute!.listen(controlSocketPath(home), r));
    const started = Date.now();
    await expect(callNode(home, 'GET', '/v1/status', 300)).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringMatching(/did not answer within 300 ms/) });
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
