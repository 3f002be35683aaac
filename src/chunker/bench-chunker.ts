/**
 * Measures chunkFile throughput on a real file, so changes to the chunker can be judged by numbers:
 * `npx tsc -p tsconfig.json && node dist/chunker/bench-chunker.js FILE [avgSize] [runs]`.
 * Prints MB/s (10^6 bytes) and MiB/s per run; read the first run as a cold-ish page cache.
 */
import { stat } from 'node:fs/promises';
import { chunkFile } from './chunk-file.js';
import { chunkParamsFor } from './fastcdc.js';

async function main(): Promise<void> {
  const [path, avgArg, runsArg] = process.argv.slice(2);
  if (!path) {
    console.error('usage: bench-chunker FILE [avgSize] [runs]');
    process.exit(2);
  }
  const avgSize = avgArg ? Number(avgArg) : undefined;
  const runs = runsArg ? Number(runsArg) : 3;
  const size = (await stat(path)).size;
  const params = avgSize === undefined ? chunkParamsFor(size) : { avgSize };
  console.log(`${path}: ${size} bytes, avgSize ${params.avgSize}`);
  for (let run = 1; run <= runs; run++) {
    const started = process.hrtime.bigint();
    let chunks = 0;
    let bytes = 0;
    for await (const chunk of chunkFile(path, { avgSize })) {
      chunks++;
      bytes += chunk.size;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      `run ${run}: ${chunks} chunks (mean ${(bytes / Math.max(1, chunks) / 1024).toFixed(0)} KiB) in ${seconds.toFixed(3)} s: ` +
        `${(bytes / 1e6 / seconds).toFixed(0)} MB/s, ${(bytes / 2 ** 20 / seconds).toFixed(0)} MiB/s`,
    );
  }
}

await main();
