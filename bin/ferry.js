#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4
// The shebang sizes memory for a long-running node; it applies when this file is run as a
// program (`ferry`, `npm start`, `bin/ferry.js`), not as `node bin/ferry.js`. Both settings are
// read only at process start. Measured in the bench (scenario 3 right after scenario 1 on the
// same nodes): peak RSS 136-143 MB instead of 150-158 MB; times unchanged within the noise.
// - MALLOC_ARENA_MAX=2: glibc gives each thread-pool thread its own malloc arena, whose freed
//   memory stays in the process.
// - --max-semi-space-size=4 (MB): V8's young generation otherwise grows to 16 MB per semi-space
//   during a large transfer.
// More libuv threads than the default 4: file writes, fsyncs and reads of many small files
// run there concurrently while the main thread keeps the network busy.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/main.js');
