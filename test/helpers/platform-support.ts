// What the platform tests proved, as the README's support table says it (docs/platform-
// support.json, rendered by `npm run docs`). Each platform test file records the
// combinations its passing subtests proved, then checks the committed file: its entries
// from that test file must be exactly those. A combination the run did not prove (failed,
// removed) or one it proved that the file lacks fails the check;
// EARSHOT_RECORD_SUPPORT=1 rewrites the test file's entries instead (then `npm run docs`).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';

import type { SupportEntry } from '../../scripts/docs.js';
import { projectRoot } from '../../src/paths.js';

export type { SupportEntry };

export const supportFile = path.join(projectRoot, 'docs/platform-support.json');

export interface SupportRecordFile {
  about: string;
  combinations: SupportEntry[];
}

const about =
  'What npm run test:platform proved, by test file: written by EARSHOT_RECORD_SUPPORT=1 npm run test:platform, checked by every run of it, rendered into the README by npm run docs.';

const key = (e: SupportEntry) => [e.os, e.arch, e.node.padStart(3, '0'), e.nodeFrom, e.uws, e.how, e.test].join('\u0000');
const sorted = (entries: SupportEntry[]) => [...entries].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

export function readSupport(file = supportFile): SupportRecordFile {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SupportRecordFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { about, combinations: [] };
    throw err;
  }
}

/** The combinations one test file proves. */
export class SupportRecord {
  readonly entries: SupportEntry[] = [];

  constructor(
    readonly test: string,
    readonly file = supportFile,
  ) {}

  /** Records a combination; call it only once the subtest's assertions have passed. */
  proved(entry: Omit<SupportEntry, 'test'>): void {
    this.entries.push({ ...entry, test: this.test });
  }

  /** The committed file's entries from this test file equal the proven ones (or are rewritten to). */
  check(t: Test, record = process.env.EARSHOT_RECORD_SUPPORT === '1'): void {
    const current = readSupport(this.file);
    const committed = sorted(current.combinations.filter((e) => e.test === this.test));
    const proven = sorted(this.entries);
    if (record) {
      const others = current.combinations.filter((e) => e.test !== this.test);
      writeFileSync(this.file, `${JSON.stringify({ about, combinations: sorted([...others, ...proven]) }, null, 2)}\n`);
      t.pass(`${path.relative(projectRoot, this.file)}: ${proven.length} combinations from ${this.test} recorded (now run npm run docs)`);
      return;
    }
    for (const e of proven) t.comment(`proved: ${e.os} ${e.arch}, Node ${e.node} (${e.nodeFrom}), ${e.uws}, ${e.how}`);
    t.same(
      committed,
      proven,
      `${path.relative(projectRoot, this.file)} claims exactly what ${this.test} proved in this run (EARSHOT_RECORD_SUPPORT=1 rewrites it)`,
    );
  }
}
