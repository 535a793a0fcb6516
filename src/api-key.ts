import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { AppError } from './errors.js';
import { writeKeyFile } from './key-file.js';
import type { Logger } from './log.js';

/** Shorter keys are refused at start: a guessable key is no key (generated ones have 32). */
export const minApiKeyLength = 16;

/**
 * Why `key` cannot be the API key, or undefined when it can: at least 16 characters, all
 * printable ASCII without spaces, so that every client can send it every way (a Bearer
 * token ends at the first space; header values carry no control characters).
 */
export function apiKeyProblem(key: string): string | undefined {
  if (key === '') return 'is empty';
  if (!/^[\x21-\x7e]*$/.test(key)) return 'contains spaces or characters outside printable ASCII';
  if (key.length < minApiKeyLength) return `is ${key.length} characters long, shorter than the ${minApiKeyLength} required`;
  return undefined;
}

export interface ResolvedApiKey {
  key: string;
  /** True only on the start that generated it. */
  generated: boolean;
  /** Where a generated (or earlier generated) key is kept; undefined when it is configured. */
  file?: string;
}

/**
 * The configured API key, or the one generated on first start and kept in the state
 * directory (mode 0600). A key file that is empty, short or garbled (a full SD card, an
 * editor's mistake) is refused with ERR_CONFIG rather than read as a key anyone can send.
 */
export function resolveApiKey(configured: string | undefined, stateDir: string): ResolvedApiKey {
  if (configured) return { key: configured, generated: false };
  const file = path.join(stateDir, 'api-key');
  let stored: string | undefined;
  try {
    stored = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (stored !== undefined) {
    const key = stored.trim();
    const problem = apiKeyProblem(key);
    if (problem) {
      throw new AppError(
        'ERR_CONFIG',
        `The API key in ${file} ${problem}: delete the file to have a new key generated at the next start, or write a key of at least ${minApiKeyLength} printable ASCII characters into it (or set EARSHOT_API_KEY)`,
      );
    }
    return { key, generated: false, file };
  }
  const key = randomBytes(24).toString('base64url');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeKeyFile(file, `${key}\n`);
  return { key, generated: true, file };
}

/** Where output goes that only a person at a terminal should see. */
export interface Terminal {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * Says where a newly generated key is. The key itself goes only to an interactive
 * terminal (`npm start`), never into the log: under systemd the log is the journal,
 * which every member of `adm` and `systemd-journal` can read, and keeps it for months.
 */
export function announceGeneratedKey(resolved: ResolvedApiKey, log: Logger, terminal: Terminal = process.stdout): void {
  if (!resolved.generated) return;
  log.info('generated an API key; it is kept in the state directory, readable by the service only', { file: resolved.file });
  if (terminal.isTTY) terminal.write(`\nThe API key (shown once; also in ${resolved.file}):\n\n  ${resolved.key}\n\n`);
}
