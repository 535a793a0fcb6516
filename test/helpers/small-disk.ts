// A small file system of its own for a test: a tmpfs, mounted as root (CI runs as root).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Test } from 'tap';

export const needsRoot = { skip: process.getuid?.() === 0 ? false : 'mounting a tmpfs needs root' };

/** A fresh tmpfs of `megabytes`, unmounted (lazily, whatever still holds it) when the test ends. */
export function mountSmallDisk(t: Test, megabytes: number): string {
  // Outside the test's fixture directory, which tap removes before later teardowns run.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-card-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  t.teardown(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
