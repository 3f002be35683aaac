/**
 * What the simulated users wrote, to check "no silent loss" and "no torn files" against.
 *
 * `written`: every content (sha256 of a whole file) any operation produced. A file under a real
 * name whose content is not among them was written by nobody: torn or invented.
 *
 * `required`: contents that must still exist at the end somewhere (current, a conflict copy,
 * or the version area of some node). A content leaves this set only when a user replaced or
 * deleted it themselves on one node while no other copy of it existed anywhere (no other node
 * had it, no version area held it): then it is gone by the user's own hand, not by Ferry.
 * If a copy existed elsewhere, that copy may only disappear by Ferry (which must keep it as a
 * version or conflict copy) or by another user action, which is judged the same way.
 */
export interface Provenance {
  readonly step: number;
  readonly what: string;
}

export class Oracle {
  readonly written = new Map<string, Provenance>();
  readonly required = new Map<string, Provenance>();
  /** Contents users removed while no other copy existed (for the report). */
  readonly userRemoved = new Map<string, Provenance>();
  writes = 0;
  /** Every path an operation wrote to. */
  readonly paths = new Set<string>();

  noteWritten(hash: string, p: Provenance): void {
    this.writes++;
    if (!this.written.has(hash)) this.written.set(hash, p);
    this.required.set(hash, this.required.get(hash) ?? p);
    this.userRemoved.delete(hash);
  }

  /** A user replaced or deleted `hash` on one node; `presentElsewhere` is whether a copy still exists. */
  noteSuperseded(hash: string, presentElsewhere: boolean, p: Provenance): void {
    if (presentElsewhere || !this.required.has(hash)) return;
    this.required.delete(hash);
    this.userRemoved.set(hash, p);
  }
}
