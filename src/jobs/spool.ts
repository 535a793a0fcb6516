import { mkdirSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Audio files of jobs in `<stateDir>/spool`: the upload as received (`<id>.upload`) and
 * the decoded 16 kHz float PCM (`<id>.pcm`). Both go once the job finishes.
 */
export class Spool {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'spool');
  }

  open(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  uploadPath(id: string): string {
    return path.join(this.dir, `${id}.upload`);
  }

  pcmPath(id: string): string {
    return path.join(this.dir, `${id}.pcm`);
  }

  /** Makes new directory entries (a fresh upload) survive a power cut. */
  async syncDir(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async removeFiles(id: string): Promise<void> {
    await Promise.all([rm(this.uploadPath(id), { force: true }), rm(this.pcmPath(id), { force: true })]);
  }

  /** Removes every file that is not of a job `needed` names (a crash between commit and cleanup). */
  async removeOrphans(needed: (id: string) => boolean): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      const id = name.replace(/\.(upload|pcm)$/, '');
      if (id === name || !needed(id)) {
        await rm(path.join(this.dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}
