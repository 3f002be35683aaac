#!/usr/bin/env node
// More libuv threads than the default 4: file writes, fsyncs and reads of many small files
// run there concurrently while the main thread keeps the network busy.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/main.js');
