/** The pid file (`--pid`). */
import * as fs from 'node:fs';

/** Writes the decimal pid without a newline, mode 0644 (as swtpm). Returns a remover. */
export function writePidFile(target: { file?: string; fd?: number }, pid = process.pid): () => void {
  if (target.file !== undefined) {
    const file = target.file;
    fs.writeFileSync(file, String(pid), { mode: 0o644 });
    return () => {
      try {
        fs.unlinkSync(file);
      } catch {
        /* already gone */
      }
    };
  }
  if (target.fd !== undefined) {
    fs.writeSync(target.fd, String(pid));
    fs.closeSync(target.fd);
  }
  return () => undefined;
}
