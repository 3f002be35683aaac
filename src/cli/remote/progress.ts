/**
 * Transfer progress for people: one line on stderr, redrawn at most ten times a second, only
 * when stderr is a terminal (and not with --json), so pipes and scripts see nothing. Also the
 * optional rate limit (`--limit-rate`), a Transform that paces the bytes through it.
 */
import { Transform } from 'node:stream';
import { formatBytes } from '../../core/format-bytes.js';

export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly started = Date.now();
  private label = '';

  constructor(
    private readonly enabled: boolean,
    private total: number,
  ) {}

  static forTerminal(json: boolean, total: number): Progress {
    return new Progress(!json && !!process.stderr.isTTY, total);
  }

  file(label: string): void {
    this.label = label;
    this.draw(true);
  }

  add(n: number): void {
    this.done += n;
    this.draw(false);
  }

  /** The total changed (e.g. a file turned out to be resumable). */
  adjustTotal(delta: number): void {
    this.total += delta;
  }

  finish(): void {
    if (!this.enabled) return;
    this.draw(true);
    process.stderr.write('\n');
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const pct = this.total > 0 ? Math.min(100, Math.floor((100 * this.done) / this.total)) : 100;
    const width = 24;
    const filled = Math.round((width * pct) / 100);
    const rate = this.done / Math.max(0.001, (now - this.started) / 1000);
    const cols = process.stderr.columns ?? 80;
    let line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}% ${formatBytes(this.done)}/${formatBytes(this.total)} ${formatBytes(rate)}/s ${this.label}`;
    if (line.length > cols - 1) line = line.slice(0, cols - 2) + '…';
    process.stderr.write(`\r${line}\x1b[K`);
  }
}

/** Counts bytes into `onBytes` and, with a rate, paces them. */
export function meter(onBytes: (n: number) => void, bytesPerSecond?: number): Transform {
  const start = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      onBytes(chunk.length);
      if (!bytesPerSecond) return done(null, chunk);
      const due = start + (sent / bytesPerSecond) * 1000;
      const wait = due - Date.now();
      if (wait <= 0) return done(null, chunk);
      setTimeout(() => done(null, chunk), wait);
    },
  });
}
