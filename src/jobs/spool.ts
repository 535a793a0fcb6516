import { mkdirSync } from 'node:fs';
import { access, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Audio files of jobs in `<stateDir>/spool`: the upload as received (`<id>.upload`), the
 * one copy of a job's audio: it is decoded straight into the engine, never to a file here
 * (docs/pcm-streaming.md), and goes once the job finishes. Audio fetched from a job's
 * source URL arrives as `<id>.fetch` and becomes its upload only once complete and
 * fsynced, so an upload file is always whole and a `.fetch` never is.
 */
export class Spool {
  readonly dir: string;
  /** The directory fsync under way, and the one callers arriving meanwhile share (syncDir). */
  private dirSync: Promise<void> | undefined;
  private nextDirSync: Promise<void> | undefined;
  /**
   * The directory, open from the first fsync until close(): each fsync is then one call on
   * libuv's pool instead of three (open, fsync, close), which the uploads' own opens,
   * writes and fsyncs queue behind.
   */
  private dirHandle: Promise<FileHandle> | undefined;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'spool');
  }

  open(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  uploadPath(id: string): string {
    return path.join(this.dir, `${id}.upload`);
  }

  /** Decoded float PCM that versions before streaming spooled: removed with the job's files, and at start. */
  pcmPath(id: string): string {
    return path.join(this.dir, `${id}.pcm`);
  }

  /** Where a download from a job's source goes until it is complete. */
  fetchPath(id: string): string {
    return path.join(this.dir, `${id}.fetch`);
  }

  /** The complete download of `id` becomes its upload, durably (the directory is fsynced). */
  async keepFetched(id: string): Promise<void> {
    await rename(this.fetchPath(id), this.uploadPath(id));
    await this.syncDir();
  }

  /** Whether the job's audio is here (uploaded, or fetched completely). */
  async hasUpload(id: string): Promise<boolean> {
    try {
      await access(this.uploadPath(id));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Makes new directory entries (a fresh upload) survive a power cut. Uploads that finish
   * close together share one fsync: a call while one runs joins the next, which starts
   * once the running one ends (the running one may have begun before the caller's entry).
   */
  syncDir(): Promise<void> {
    if (!this.dirSync) {
      this.dirSync = this.fsyncDir().finally(() => {
        this.dirSync = undefined;
      });
      return this.dirSync;
    }
    this.nextDirSync ??= this.dirSync.then(
      () => this.startNextDirSync(),
      () => this.startNextDirSync(),
    );
    return this.nextDirSync;
  }

  private startNextDirSync(): Promise<void> {
    this.nextDirSync = undefined;
    return this.syncDir();
  }

  private async fsyncDir(): Promise<void> {
    this.dirHandle ??= open(this.dir, 'r');
    const pending = this.dirHandle;
    try {
      await (await pending).sync();
    } catch (err) {
      // Opened again next time (a failed open, or a handle that went bad).
      if (this.dirHandle === pending) this.dirHandle = undefined;
      void pending.then((h) => h.close()).catch(() => {});
      throw err;
    }
  }

  /** Closes the directory handle the fsyncs keep (the service stops); a later fsync opens it again. */
  async close(): Promise<void> {
    const pending = this.dirHandle;
    this.dirHandle = undefined;
    await Promise.allSettled([this.dirSync, this.nextDirSync]);
    if (pending) await (await pending.catch(() => undefined))?.close();
  }

  async removeFiles(id: string): Promise<void> {
    await Promise.all([this.uploadPath(id), this.pcmPath(id), this.fetchPath(id)].map((file) => rm(file, { force: true })));
  }

  /**
   * Removes every file that is not the upload of a job `needed` names (a crash between
   * commit and cleanup), every partial download (`.fetch`: a crash or stop mid-download; the
   * job fetches its audio again) and every decoded PCM file an older version left (`.pcm`:
   * a job decodes its upload again). Only while no download runs (at start).
   */
  async removeOrphans(needed: (id: string) => boolean): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      // `<id>.fetch` and `<id>.pcm` do not match: always removed.
      const id = name.replace(/\.upload$/, '');
      if (id === name || !needed(id)) {
        await rm(path.join(this.dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}
