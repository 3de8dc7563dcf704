// Temporary directories for tests, named weir-* and removed when the test file's process ends.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TempDir {
  readonly path: string;
  /** The path of `name` inside the directory. */
  file(name: string): string;
  /** Writes `text` to `name` inside the directory and returns its path. */
  write(name: string, text: string): string;
  remove(): void;
}

/**
 * A fresh directory /tmp/weir-<tag>-XXXXXX, removed when the test process exits: after every
 * after() hook, so daemons that keep sockets in it are stopped first.
 */
export function tempDir(tag: string): TempDir {
  const dir = mkdtempSync(path.join(tmpdir(), `weir-${tag}-`));
  const t: TempDir = {
    path: dir,
    file: (name) => path.join(dir, name),
    write: (name, text) => {
      const f = path.join(dir, name);
      writeFileSync(f, text);
      return f;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  process.once('exit', () => t.remove());
  return t;
}
