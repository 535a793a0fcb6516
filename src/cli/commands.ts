import { CliError, type Client } from './client.js';
import type { Output } from './progress.js';

/** Rows as aligned columns (the first row is the header). */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

interface JobSummary {
  id: string;
  created: string;
  updated: string;
  status: string;
  user_token?: string;
}

/** `earshot jobs`: the device's newest jobs, of every dialect, as IBM lists them. */
export async function jobs(client: Client, out: Output, asJson: boolean): Promise<void> {
  const { recognitions } = await client.json<{ recognitions: JobSummary[] }>('GET', '/v1/recognitions', 'Listing jobs');
  if (asJson) return void out.write(`${JSON.stringify(recognitions, null, 2)}\n`);
  if (!recognitions.length) return void out.write('No jobs on the device.\n');
  out.write(table([['ID', 'STATUS', 'CREATED', 'UPDATED'], ...recognitions.map((j) => [j.id, j.status, j.created, j.updated])]));
}

/** The values of one metric by its label (`earshot_jobs{status="waiting"} 2`). */
function byLabel(metrics: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [, value, n] of metrics.matchAll(new RegExp(`^${name}\\{${label}="([^"]+)"\\} (\\S+)$`, 'gm'))) out[value!] = Number(n);
  return out;
}
const single = (metrics: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);

/** `earshot status`: whether the device is ready, its model, queue, deliveries and disk. */
export async function status(client: Client, out: Output, asJson: boolean): Promise<void> {
  const ready = await client.request('GET', '/readyz', 'Asking whether the device is ready', { accept: [503] });
  const readiness = (await ready.json()) as { status: string; reason?: string };
  // One body for IBM's SDKs (`models`: per locale) and OpenAI's (`data`: the whisper model, and its alias whisper-1).
  const models = await client.json<{ models: Array<{ name: string; language: string }>; data?: Array<{ id: string }> }>('GET', '/v1/models', 'Listing models');
  const metrics = await (await client.request('GET', '/metrics', 'Reading metrics')).text();
  const jobsByStatus = byLabel(metrics, 'earshot_jobs', 'status');
  const deliveries = byLabel(metrics, 'earshot_deliveries', 'state');
  const free = single(metrics, 'earshot_disk_free_bytes');
  const summary = {
    url: client.url,
    ready: readiness.status === 'ready',
    ...(readiness.reason ? { reason: readiness.reason } : {}),
    model: (models.data ?? []).map((m) => m.id).find((id) => id !== 'whisper-1') ?? null,
    languages: [...new Set(models.models.map((m) => m.language))],
    jobs: jobsByStatus,
    deliveries,
    diskFreeBytes: free,
  };
  if (asJson) return void out.write(`${JSON.stringify(summary, null, 2)}\n`);
  const counts = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, n]) => `${k.replace('_', ' ')} ${n}`)
      .join(', ') || 'none';
  out.write(
    [
      `earshot at ${client.url}`,
      `  ready:       ${summary.ready ? 'yes' : `no (${readiness.reason ?? readiness.status})`}`,
      `  model:       ${summary.model ?? '(loading)'}`,
      `  languages:   ${summary.languages.join(', ') || '(loading)'}`,
      `  jobs:        ${counts(jobsByStatus)}`,
      `  deliveries:  ${counts(deliveries)}`,
      `  disk free:   ${Number.isFinite(free) ? `${(free / 1e9).toFixed(1)} GB` : 'unknown'}`,
      '',
    ].join('\n'),
  );
}

/** One delivery as the command line shows it, from IBM's callbacks or an Azure web hook. */
interface Delivery {
  id: string;
  kind: 'callback' | 'webhook';
  target: string;
  /** The Azure web hook's id (its deliveries are redelivered under it). */
  hook?: string;
  event: string;
  state: string;
  attempts: number;
  lastError?: string;
}

interface IbmDelivery {
  id: string;
  callback_url: string;
  event: string;
  state: string;
  attempts: number;
  last_error?: string;
}
interface AzureDelivery {
  id: string;
  event: string;
  state: string;
  attempts: number;
  lastError?: string;
}

/** Azure's newest version path: the web hooks and their deliveries are listed under it. */
const azure = '/speechtotext/v3.2';

async function listDeliveries(client: Client, states: string[]): Promise<Delivery[]> {
  const found: Delivery[] = [];
  const hooks = await client.json<{ values: Array<{ self: string; webUrl: string }> }>('GET', `${azure}/webhooks?top=100`, 'Listing web hooks');
  for (const state of states) {
    const ibm = await client.json<{ deliveries: IbmDelivery[] }>('GET', `/v1/callback_deliveries?state=${state}`, 'Listing callback deliveries');
    found.push(
      ...ibm.deliveries.map((d) => ({
        id: d.id,
        kind: 'callback' as const,
        target: d.callback_url,
        event: d.event,
        state: d.state,
        attempts: d.attempts,
        ...(d.last_error ? { lastError: d.last_error } : {}),
      })),
    );
    for (const hook of hooks.values) {
      const id = hook.self.split('?')[0]!.split('/').at(-1)!;
      const page = await client.json<{ values: AzureDelivery[] }>(
        'GET',
        `${azure}/webhooks/${id}/deliveries?state=${state}&top=100`,
        'Listing web hook deliveries',
      );
      found.push(
        ...page.values.map((d) => ({
          id: d.id,
          kind: 'webhook' as const,
          target: hook.webUrl,
          hook: id,
          event: d.event,
          state: d.state,
          attempts: d.attempts,
          ...(d.lastError ? { lastError: d.lastError } : {}),
        })),
      );
    }
  }
  return found;
}

/**
 * `earshot deliveries`: pending and dead callbacks and web hook deliveries (`--dead`: the
 * dead letters only; `--delivered`: the recently delivered); `--redeliver ID` sends a dead
 * letter again.
 */
export async function deliveries(client: Client, out: Output, o: { dead: boolean; delivered: boolean; redeliver?: string; json: boolean }): Promise<void> {
  if (o.redeliver) {
    const id = o.redeliver;
    const ibm = await client.request('POST', `/v1/callback_deliveries/${encodeURIComponent(id)}/redeliver`, `Redelivering ${id}`, { accept: [404] });
    if (ibm.ok) {
      await ibm.arrayBuffer();
      return void out.write(`Redelivering ${id} (callback): it is pending again.\n`);
    }
    await ibm.arrayBuffer();
    // Not an IBM callback: a web hook's, redelivered under its hook.
    const dead = await listDeliveries(client, ['dead']);
    const hooked = dead.find((d) => d.id === id && d.hook);
    if (!hooked) throw new CliError(`No dead letter ${id} on the device: \`earshot deliveries --dead\` lists them.`);
    await client.request('POST', `${azure}/webhooks/${hooked.hook}/deliveries/${encodeURIComponent(id)}:redeliver`, `Redelivering ${id}`);
    return void out.write(`Redelivering ${id} (web hook ${hooked.hook}): it is pending again.\n`);
  }
  const [states, none] = o.delivered
    ? [o.dead ? ['delivered', 'dead'] : ['delivered'], o.dead ? 'recent deliveries or dead letters' : 'recent deliveries']
    : [o.dead ? ['dead'] : ['pending', 'dead'], o.dead ? 'dead letters' : 'pending or dead deliveries'];
  const found = await listDeliveries(client, states);
  if (o.json) return void out.write(`${JSON.stringify(found, null, 2)}\n`);
  if (!found.length) return void out.write(`No ${none}.\n`);
  out.write(
    table([
      ['ID', 'STATE', 'KIND', 'EVENT', 'ATTEMPTS', 'TARGET', 'LAST ERROR'],
      ...found.map((d) => [d.id, d.state, d.kind, d.event, String(d.attempts), d.target, d.lastError ?? '']),
    ]),
  );
}
