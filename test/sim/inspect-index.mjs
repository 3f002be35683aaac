// Shows what every node of a kept simulation (`--keep`, or a failed seed) knows of one path:
// the file on disk, its own record and what each peer announced.
//   node test/sim/inspect-index.mjs /tmp/ferry-sim-108-XXXX 'd1/Report.md'
import Database from 'better-sqlite3';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';

const [root, path] = process.argv.slice(2);
if (!root || !path) {
  console.error('usage: node test/sim/inspect-index.mjs SIM_ROOT PATH');
  process.exit(2);
}
const cols = 'deleted, size, version, modified_by, sequence, mtime_ms';
for (const n of readdirSync(`${root}/homes`).sort()) {
  const db = new Database(`${root}/homes/${n}/index.db`, { readonly: true, fileMustExist: true });
  const local = db.prepare(`SELECT ${cols}, st_size, st_mtime_ms, st_ino, scanned_at_ms, length(blocks) / 36 AS blocks FROM files WHERE path = ?`).get(path);
  const remote = db.prepare(`SELECT device, ${cols}, length(blocks) / 36 AS blocks FROM remote_files WHERE path = ? ORDER BY device`).all(path);
  let disk;
  try {
    const abs = `${root}/folders/${n}/${path}`;
    const st = lstatSync(abs);
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `symlink -> ${readlinkSync(abs)}` : 'file';
    disk = { type, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  } catch {
    disk = 'absent';
  }
  console.log(`${n}: disk ${JSON.stringify(disk)}`);
  console.log(`  local  ${JSON.stringify(local ?? null)}`);
  for (const r of remote) console.log(`  from ${r.device.slice(0, 7)} ${JSON.stringify({ ...r, device: undefined })}`);
  db.close();
}
