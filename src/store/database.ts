import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { open, type Database, type RootDatabase } from 'lmdb';

/**
 * earshot's one LMDB environment (`<stateDir>/db`) and its named databases. Every state
 * change that must survive a power cut goes through `durably()`, which resolves only once
 * the transaction is committed and flushed to the storage medium.
 */
export class StateDatabase {
  private root: RootDatabase | null = null;

  constructor(private readonly stateDir: string) {}

  open(): void {
    const dir = path.join(this.stateDir, 'db');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Default sync settings: crash-proof commits (overlapping sync, flushed before
    // durably() resolves). No compression: results are small and the Pi's CPU is for whisper.
    this.root = open({ path: dir, maxDbs: 16 });
  }

  /** A named database of the environment; values are msgpack-encoded. */
  db<V = unknown, K extends import('lmdb').Key = import('lmdb').Key>(name: string): Database<V, K> {
    if (!this.root) throw new Error('StateDatabase.open() must run first');
    return this.root.openDB<V, K>({ name });
  }

  /**
   * Runs `fn` in one write transaction (its puts and removes commit together or not at
   * all) and resolves once the commit is flushed to disk.
   */
  async durably<T>(fn: () => T): Promise<T> {
    if (!this.root) throw new Error('StateDatabase.open() must run first');
    const result = await this.root.transaction(fn);
    await this.root.flushed;
    return result;
  }

  async close(): Promise<void> {
    const root = this.root;
    this.root = null;
    if (root) {
      await root.flushed;
      await root.close();
    }
  }
}
