import { App } from './app.js';
import { loadConfig, type Config } from './config.js';
import { AppError } from './errors.js';
import { createLogger } from './log.js';

function fail(message: string): never {
  process.stderr.write(`earshot: ${message}\n`);
  process.exit(1);
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  fail(err instanceof AppError ? err.message : String(err));
}
const log = createLogger({ level: config.logLevel });
// libuv's pool does the uploads' file work (open, fsync, close), and each running
// transcription holds one of its threads; with its default of 4, concurrent uploads queue
// for a thread (docs/group-commit.md). Node sizes it before any code of ours runs, so the
// launchers set it: `npm start` and the systemd unit.
if (!process.env.UV_THREADPOOL_SIZE) {
  log.warn(
    'UV_THREADPOOL_SIZE is not set: libuv has 4 threads for file work, which slows concurrent uploads; start with npm start or set UV_THREADPOOL_SIZE=16',
  );
}
const app = new App(config, log);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('shutting down', { signal });
  await app.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  await app.start();
} catch (err) {
  if (err instanceof AppError && err.code === 'ERR_MODEL_NOT_FOUND') {
    fail(`${err.message}\nInstall a model (scripts/download-model ${config.model}) or point EARSHOT_MODEL at a ggml model file.`);
  }
  // An AppError's message says what is wrong and what to do; anything else is a bug.
  fail(err instanceof AppError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
}
