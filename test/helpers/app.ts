import { App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { testDecoderSandbox } from './audio-fixtures.js';
import { emulated } from './emulation.js';
import { testModelPath } from './models.js';
import { until } from './poll.js';

export const apiKey = 'test-key-0123456789';

/** The settings of a test service: loopback, a free port, the test model, a known key. */
export function testServiceEnv(stateDir: string): Record<string, string> {
  return {
    EARSHOT_HOST: '127.0.0.1',
    EARSHOT_PORT: '0',
    // Any free port: test services run side by side.
    EARSHOT_WYOMING_PORT: '0',
    EARSHOT_STATE_DIR: stateDir,
    EARSHOT_MODEL: testModelPath(),
    EARSHOT_API_KEY: apiKey,
    EARSHOT_THREADS: '2',
    EARSHOT_CALLBACK_CIDRS: '127.0.0.0/8',
    // Random weights make whisper fall back on every window: slow and pointless here.
    EARSHOT_TEMPERATURE_FALLBACK: 'false',
    EARSHOT_DECODER_SANDBOX: testDecoderSandbox,
  };
}

export interface RunningApp {
  app: App;
  base: string;
  /** Headers with the API key, as IBM's SDKs send it (Basic apikey:KEY). */
  auth: Record<string, string>;
  stateDir: string;
}

/**
 * The real service on 127.0.0.1 and a free port, with a temporary state directory and
 * the generated test model; stopped when the test ends.
 */
export async function startApp(
  t: { testdir(): string; teardown(fn: () => unknown): void },
  env: Record<string, string> = {},
  stateDir = t.testdir(),
  clocks: ConstructorParameters<typeof App>[2] = {},
): Promise<RunningApp> {
  const config = loadConfig({ file: null, env: { ...testServiceEnv(stateDir), EARSHOT_LOG_LEVEL: 'warn', ...env } });
  const app = new App(config, createLogger({ level: config.logLevel }), clocks);
  await app.start();
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await app.stop();
    stopped = true;
  });
  return {
    app,
    base: `http://127.0.0.1:${app.http.port}`,
    auth: { Authorization: `Basic ${Buffer.from(`apikey:${apiKey}`).toString('base64')}` },
    stateDir,
  };
}

/** Polls a job until it leaves waiting/processing; resolves with its status body. */
/** Waits for a job to end; under emulation (qemu-user on a busy machine) 10 minutes, not 1. */
export async function waitForJob(base: string, auth: Record<string, string>, id: string, timeoutMs = emulated ? 600_000 : 60_000) {
  let body: { status: string } & Record<string, unknown> = { status: 'unknown' };
  await until(
    async () => {
      body = (await (await fetch(`${base}/v1/recognitions/${id}`, { headers: auth })).json()) as typeof body;
      return body.status === 'completed' || body.status === 'failed';
    },
    timeoutMs,
    `job ${id} to finish (still ${body.status})`,
  );
  return body;
}
