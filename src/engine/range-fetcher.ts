/**
 * Asks one peer for ranges of files. A small range (a small file, typically) waits for the
 * others asked for in the same turn of the event loop and goes with them in one `ranges`
 * request: a pull of ten thousand small files then costs a few hundred requests instead of
 * ten thousand, on both sides, and far fewer round trips on a slow link. A large range goes
 * alone as a `range` request, as before.
 */
import { FerryError, type ErrorCode } from '../core/errors.js';
import type { RateLimits } from '../core/rate-limiter.js';
import type { Message, PeerConnection } from '../protocol/connection.js';
import { MAX_BATCH_RANGES, parseRangesReply } from '../protocol/messages.js';

/** Ranges up to this size are batched. */
export const SMALL_RANGE_BYTES = 64 * 1024;
/** A batch is sent at once when it holds this many bytes. */
const BATCH_BYTES = 1024 * 1024;
/**
 * A peer that paces what it sends (its hello says at what rate) is asked for at most this many
 * seconds' worth at a time: the rest would wait in its queue while the requests' timers run, and
 * two seconds keep even a slow link busy.
 */
const PACED_SECONDS_ASKED = 2;

interface WireBlock {
  readonly size: number;
  readonly hash: string;
}

interface Waiting {
  readonly item: { path: string; offset: number; blocks: readonly WireBlock[] };
  readonly size: number;
  resolve(data: Buffer): void;
  reject(err: unknown): void;
}

export class RangeFetcher {
  /** Ranges waiting to be sent, per folder. */
  private readonly waiting = new Map<string, Waiting[]>();
  private flushScheduled = false;
  /** Bytes asked for and not yet answered, and the requests waiting for room under the cap. */
  private asked = 0;
  private askedCap = Infinity;
  private readonly waitingForRoom: Array<{ size: number; go: () => void }> = [];

  /** `rates.receive` paces what this node asks for (its own receive limit). */
  constructor(
    private readonly conn: PeerConnection,
    private readonly rates?: RateLimits,
  ) {}

  /** The peer sends at most this many bytes a second (0: as fast as it can). */
  peerSendRate(bytesPerSecond: number): void {
    this.askedCap = bytesPerSecond > 0 ? bytesPerSecond * PACED_SECONDS_ASKED : Infinity;
    this.makeRoom();
  }

  fetch(folder: string, path: string, offset: number, blocks: readonly WireBlock[]): Promise<Buffer> {
    const size = blocks.reduce((n, b) => n + b.size, 0);
    if (size > SMALL_RANGE_BYTES) {
      return this.request({ header: { type: 'range', folder, path, offset, blocks } }, size).then((reply) => reply.payload ?? Buffer.alloc(0));
    }
    return new Promise<Buffer>((resolve, reject) => {
      let batch = this.waiting.get(folder);
      if (!batch) this.waiting.set(folder, (batch = []));
      batch.push({ item: { path, offset, blocks }, size, resolve, reject });
      if (batch.length >= MAX_BATCH_RANGES || batch.reduce((n, w) => n + w.size, 0) >= BATCH_BYTES) {
        this.waiting.delete(folder);
        this.send(folder, batch);
      } else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [folder, batch] of this.waiting) this.send(folder, batch);
    this.waiting.clear();
  }

  private send(folder: string, batch: Waiting[]): void {
    const items = batch.map((w) => w.item);
    this.request({ header: { type: 'ranges', folder, items } }, batch.reduce((n, w) => n + w.size, 0)).then(
      (reply) => {
        try {
          const payload = reply.payload ?? Buffer.alloc(0);
          const { sizes, errors } = parseRangesReply(reply.header, batch, payload.length);
          let at = 0;
          batch.forEach((w, i) => {
            const n = sizes[i]!;
            if (n < 0) {
              const e = errors[i]!;
              w.reject(new FerryError(e.code as ErrorCode, e.message, { data: { remote: true } }));
              return;
            }
            w.resolve(payload.subarray(at, at + n));
            at += n;
          });
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  }

  /** Sends a request for `size` bytes once the rate limits allow; without limits, at once. */
  private request(message: Message, size: number): Promise<Message> {
    const receive = this.rates?.receive;
    if (!receive && this.askedCap === Infinity && this.waitingForRoom.length === 0) return this.conn.request(message);
    return (receive?.take(size) ?? Promise.resolve())
      .then(() => this.room(size))
      .then(() => this.conn.request(message).finally(() => {
        this.asked -= size;
        this.makeRoom();
      }));
  }

  /** Resolves when `size` more bytes may be asked for (at once when none are: a block may exceed the cap). */
  private room(size: number): Promise<void> {
    return new Promise((go) => {
      this.waitingForRoom.push({ size, go });
      this.makeRoom();
    });
  }

  private makeRoom(): void {
    for (let next = this.waitingForRoom[0]; next && (this.asked === 0 || this.asked + next.size <= this.askedCap); next = this.waitingForRoom[0]) {
      this.waitingForRoom.shift();
      this.asked += next.size;
      next.go();
    }
  }
}
