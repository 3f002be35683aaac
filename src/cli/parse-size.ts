/** Sizes and rates as people type them on the command line. */
import { FerryError } from '../core/errors.js';

/** Parses `500K`, `2M`, `1.5G`, `100000` (bytes; K = 1024). */
export function parseSize(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new FerryError('INVALID_CONFIG', `${option} ${JSON.stringify(text)}: use a size like 500K, 2M or 1G`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

/** Bytes per second for `option` (--limit-rate, --max-send-rate, …). */
export function parseRate(text: string, option: string): number {
  const n = parseSize(text, option);
  if (n < 1) throw new FerryError('INVALID_CONFIG', `${option} must be at least 1 byte per second`);
  return n;
}
