// The benchmarks' service (scripts/lib/service-process.ts with the benchmarks' settings)
// and the API calls they time.
import { startServiceProcess, type ServiceProcess } from './service-process.js';

export const benchApiKey = 'bench-key-0123456789';
export const benchAuth = { Authorization: `Bearer ${benchApiKey}` };

/**
 * Starts the service on a free loopback port with `stateDir`, `model` and `threads`;
 * resolves once it logged "ready". `env` adds or overrides EARSHOT_* settings. Its stderr
 * is passed on.
 */
export function startService(stateDir: string, model: string, threads: number, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startServiceProcess(
    {
      ...process.env,
      EARSHOT_HOST: '127.0.0.1',
      EARSHOT_PORT: '0',
      EARSHOT_WYOMING_PORT: '0',
      EARSHOT_STATE_DIR: stateDir,
      EARSHOT_MODEL: model,
      EARSHOT_API_KEY: benchApiKey,
      EARSHOT_THREADS: String(threads),
      EARSHOT_CALLBACK_CIDRS: '127.0.0.0/8',
      EARSHOT_TEMPERATURE_FALLBACK: 'false',
      EARSHOT_MAX_QUEUED: '100000',
      EARSHOT_LOG_LEVEL: 'info',
      ...env,
    },
    { echoStderr: true },
  );
}

/** POST /v1/recognitions with a WAV body; `at`: when the 201 arrived. */
export async function submit(base: string, wav: Buffer, query = ''): Promise<{ id: string; at: number }> {
  const res = await fetch(`${base}/v1/recognitions${query}`, {
    method: 'POST',
    headers: { ...benchAuth, 'Content-Type': 'audio/wav' },
    body: wav,
  });
  const at = performance.now();
  if (res.status !== 201) throw new Error(`POST: ${res.status} ${await res.text()}`);
  return { id: ((await res.json()) as { id: string }).id, at };
}

/** GET /v1/recognitions/{id}. */
export async function getJob(base: string, id: string): Promise<Record<string, any>> {
  return (await (await fetch(`${base}/v1/recognitions/${id}`, { headers: benchAuth })).json()) as Record<string, any>;
}
