import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Runs `main` when the module at `moduleUrl` is the program node was started with (and
 * not when a test or another script imports it), setting the exit code it returns.
 */
export async function runIfMain(moduleUrl: string, main: (args: string[]) => Promise<number>): Promise<void> {
  const entry = process.argv[1];
  if (entry === undefined) return;
  let direct = false;
  try {
    direct = realpathSync(entry) === fileURLToPath(moduleUrl);
  } catch {
    return;
  }
  if (direct) process.exitCode = await main(process.argv.slice(2));
}
