#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=262144 node --max-semi-space-size=4 --initial-heap-size=48
// The shebang sizes memory for a long-running node; it applies when this file is run as a
// program (`ferry`, `npm start`, `bin/ferry.js`), not as `node bin/ferry.js`. These settings are
// read only at process start (measurements in docs/architecture.md, "Memory").
// - MALLOC_ARENA_MAX=2: glibc gives each thread-pool thread its own malloc arena, whose freed
//   memory stays in the process.
// - MALLOC_MMAP_THRESHOLD_=262144: blocks of 256 KiB and more (a large transfer's buffers) are
//   mapped and returned to the system when freed. glibc otherwise raises this threshold to the
//   largest block freed, and 1 MiB buffers then stay in its heap, fragmented.
// - --max-semi-space-size=4 (MB): V8's young generation otherwise grows to 16 MB per semi-space
//   during a large transfer.
// - --initial-heap-size=48 (MB): no full collection while the heap and the buffers allocated
//   since the last one stay under 48 MB. A large transfer's buffers otherwise start one every
//   ~10 MB received (~100 per GiB).
// More libuv threads than the default 4: file writes, fsyncs and reads of many small files
// run there concurrently while the main thread keeps the network busy.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/main.js');
