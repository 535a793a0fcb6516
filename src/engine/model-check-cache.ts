import { createHash } from 'node:crypto';
import { open, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';

import type { NativeModelCheck } from './native.js';

/**
 * Models that passed the model check, remembered in `<stateDir>/model-check.json` so that a
 * restart on the same, unchanged file loads it without checking it again (issue 13 §3;
 * docs/model-check-cache.md). A file counts as unchanged while its identity is: device and
 * inode, size, mtime and ctime (nanoseconds), and a SHA-256 of its first 64 KiB.
 *
 * ctime is what makes it hold: the kernel sets it to the current time on every change of
 * the file's data or metadata, and no system call sets it back, so a file rewritten in
 * place with its size and mtime restored (`cp -p`, `rsync -t`, `touch -d`) still has a new
 * ctime. What it cannot see: bytes changed under the filesystem (bit rot on the card, a
 * write to the raw device, a filesystem repaired after a crash) past the first 64 KiB, in
 * the vocabulary or the tensor table. Tensor data is not caught by the check either.
 */
export class ModelCheckCache {
  constructor(private readonly file: string) {}

  /** The summary of an earlier check of the file at `modelPath`, if it has not changed since. */
  async lookup(modelPath: string): Promise<{ identity: ModelIdentity; summary: NativeModelCheck | undefined }> {
    const identity = await modelIdentity(modelPath);
    const entry = (await this.read()).find((e) => sameIdentity(e.identity, identity));
    return { identity, summary: entry?.summary };
  }

  /**
   * Remembers that the file with `identity` passed the check with `summary`. Written to a
   * new file renamed over the old one, without fsync: a cache lost in a power cut only
   * means one more check. Keeps the last few models (one per path).
   */
  async remember(identity: ModelIdentity, summary: NativeModelCheck): Promise<void> {
    const entries = [{ identity, summary }, ...(await this.read()).filter((e) => e.identity.path !== identity.path)].slice(0, maxEntries);
    const temp = `${this.file}.tmp`;
    await writeFile(temp, `${JSON.stringify({ version: cacheVersion, entries }, null, 1)}\n`, { mode: 0o600 });
    await rename(temp, this.file);
  }

  /** The remembered entries; none if the file is missing, unreadable or of another version. */
  private async read(): Promise<CacheEntry[]> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as { version?: number; entries?: CacheEntry[] };
      return parsed.version === cacheVersion && Array.isArray(parsed.entries) ? parsed.entries : [];
    } catch {
      return [];
    }
  }
}

/** What must be unchanged for a remembered check to count (bigints as decimal strings). */
export interface ModelIdentity {
  /** The real path (symbolic links resolved). */
  path: string;
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  /** SHA-256 of the file's first `headBytes` bytes (its header and the start of its vocabulary). */
  headSha256: string;
}

interface CacheEntry {
  identity: ModelIdentity;
  summary: NativeModelCheck;
}

const cacheVersion = 1;
const maxEntries = 8;
export const headBytes = 64 * 1024;

export async function modelIdentity(modelPath: string): Promise<ModelIdentity> {
  const real = await realpath(modelPath);
  const handle = await open(real, 'r');
  try {
    const s = await handle.stat({ bigint: true });
    const head = Buffer.alloc(Number(s.size < BigInt(headBytes) ? s.size : BigInt(headBytes)));
    await handle.read(head, 0, head.length, 0);
    return {
      path: real,
      dev: String(s.dev),
      ino: String(s.ino),
      size: String(s.size),
      mtimeNs: String(s.mtimeNs),
      ctimeNs: String(s.ctimeNs),
      headSha256: createHash('sha256').update(head).digest('hex'),
    };
  } finally {
    await handle.close();
  }
}

function sameIdentity(a: ModelIdentity, b: ModelIdentity): boolean {
  return (
    a.path === b.path &&
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.headSha256 === b.headSha256
  );
}

/** Whether the file at `modelPath` still has `identity` (stat only; the head is not read again). */
export async function stillSame(modelPath: string, identity: ModelIdentity): Promise<boolean> {
  const s = await stat(modelPath, { bigint: true });
  return String(s.ino) === identity.ino && String(s.size) === identity.size && String(s.ctimeNs) === identity.ctimeNs;
}
