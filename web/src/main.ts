// The device's page: no framework, the DOM of index.html filled from the device's own API.
// The key lives in sessionStorage (this tab only) and goes with every API call as a
// Bearer header; the live feed gets it as a WebSocket subprotocol token.
import { confidenceClass, downloadName, formatBytes, formatDuration, formatTime, liveProtocols, transcriptOf, uploadUrl, type Word } from './lib/format.js';
import type { QueueEntry } from './lib/queue-entry.js';

/** `GET /device` (src/ops/device.ts). */
interface DeviceInfo {
  version: string;
  model: string;
  modelLoaded: boolean;
  multilingual?: boolean;
  languages?: string[];
  board: string;
  arch: string;
  cpus: number;
  cpuTemperature?: number;
  throttling?: { now: string[]; sinceBoot: string[] };
  uptime: { system: number; service: number };
  memory: { totalBytes: number; freeBytes: number };
  disk: { freeBytes: number; floorBytes: number };
  jobs: Record<string, number>;
  fleet?: 'connecting' | 'connected' | 'unreachable';
}

const keyStorage = 'earshot.key';
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let key: string | undefined = sessionStorage.getItem(keyStorage) ?? undefined;
/** The names of the files this tab uploaded, by job id (the API keeps no file names). */
const namesStorage = 'earshot.names';
const names = JSON.parse(sessionStorage.getItem(namesStorage) ?? '{}') as Record<string, string>;
/** The job the page follows: the last upload, or the one clicked. */
let followed: string | undefined;
let shown: string | undefined;
let socket: WebSocket | undefined;
let pollTimer: number | undefined;
let deliveriesTimer: number | undefined;

class Unauthorized extends Error {}

/** One API call with the key; errors carry the API's message. */
async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set('Authorization', `Bearer ${key}`);
  const res = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit' });
  if (res.status === 401) throw new Unauthorized();
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    try {
      const body = JSON.parse(text) as { error?: string; message?: string };
      // IBM's `error`, Azure's and the service's own `message`.
      message = body.error ?? body.message ?? text;
    } catch {
      // not JSON: the text itself
    }
    throw new Error(`${res.status}: ${message}`);
  }
  return res;
}

/** Creates an element with text and attributes. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<Record<string, string>> = {}, ...children: Array<Node | string>) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) if (value !== undefined) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

function showLogin(message = ''): void {
  const closing = socket;
  socket = undefined;
  closing?.close();
  clearInterval(pollTimer);
  clearInterval(deliveriesTimer);
  $('app').hidden = true;
  $('forget').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $<HTMLInputElement>('key').focus();
}

async function start(): Promise<void> {
  try {
    await loadDevice();
  } catch (err) {
    if (err instanceof Unauthorized) return showLogin(key ? 'That key was refused.' : '');
    $('connection').textContent = 'unreachable';
    return;
  }
  $('login').hidden = true;
  $('app').hidden = false;
  $('forget').hidden = !key;
  connect();
  void loadDeliveries();
  // Retries end without a job changing state: look again now and then.
  clearInterval(deliveriesTimer);
  deliveriesTimer = window.setInterval(() => void loadDeliveries(), 10_000);
}

// --- the device

const fleetText = {
  connecting: 'connecting to the broker…',
  connected: 'connected: shares the fleet’s queue',
  unreachable: 'broker unreachable: working alone',
} as const;

async function loadDevice(): Promise<void> {
  const d = (await (await api('/device')).json()) as DeviceInfo;
  const facts: Array<[string, string]> = [
    ['Model', `${d.model}${d.modelLoaded ? '' : ' (loading)'}`],
    ['Languages', !d.languages ? '–' : d.multilingual ? `${d.languages.length}, or detected` : 'English only'],
    ['Board', `${d.board} (${d.arch}, ${d.cpus} CPUs)`],
  ];
  if (d.cpuTemperature !== undefined) facts.push(['CPU temperature', `${d.cpuTemperature} °C`]);
  if (d.throttling) {
    const now = d.throttling.now.length ? d.throttling.now.join(', ') : 'no';
    const past = d.throttling.sinceBoot.length ? `; since boot: ${d.throttling.sinceBoot.join(', ')}` : '';
    facts.push(['Throttling', `${now}${past}`]);
  }
  facts.push(
    ['Uptime', `${formatDuration(d.uptime.system)} (service ${formatDuration(d.uptime.service)})`],
    ['Disk free', `${formatBytes(d.disk.freeBytes)} (keeps ${formatBytes(d.disk.floorBytes)})`],
    ['Memory free', `${formatBytes(d.memory.freeBytes)} of ${formatBytes(d.memory.totalBytes)}`],
    [
      'Jobs',
      Object.entries(d.jobs)
        .map(([s, n]) => `${n} ${s}`)
        .join(', '),
    ],
    ['Version', `earshot ${d.version}`],
  );
  // A fleet device: whether it shares the fleet's queue, or works alone for now.
  if (d.fleet) facts.splice(facts.length - 1, 0, ['Fleet', fleetText[d.fleet]]);
  $('device-facts').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const select = $<HTMLSelectElement>('language');
  if (select.options.length === 0) {
    // An English-only model (`*.en`) transcribes `en` only.
    const options = d.multilingual && d.languages ? ['', ...d.languages] : ['en'];
    select.replaceChildren(...options.map((l) => h('option', { value: l }, l || 'auto-detect')));
  }
}

// --- the queue, live

function connect(): void {
  socket?.close();
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`, liveProtocols(key));
  socket = ws;
  ws.onopen = () => {
    $('connection').textContent = 'live';
    $('connection').className = 'pill live';
    clearInterval(pollTimer);
  };
  ws.onmessage = (event) => renderQueue((JSON.parse(String(event.data)) as { jobs: QueueEntry[] }).jobs);
  ws.onclose = () => {
    if (socket !== ws) return;
    $('connection').textContent = 'reconnecting';
    $('connection').className = 'pill';
    // Poll while the feed is down; try the feed again in a while.
    clearInterval(pollTimer);
    pollTimer = window.setInterval(() => void poll(), 2000);
    window.setTimeout(() => socket === ws && connect(), 5000);
  };
}

async function poll(): Promise<void> {
  try {
    const body = (await (await api('/v1/recognitions')).json()) as { recognitions: QueueEntry[] };
    renderQueue(body.recognitions.slice(0, 25).map((r) => ({ ...r, audioBytes: 0 })));
  } catch (err) {
    if (err instanceof Unauthorized) showLogin('The key was refused.');
  }
}

let lastStatuses = '';

function jobItem(job: QueueEntry, extra: Array<Node | string> = []): HTMLLIElement {
  const open = h('button', { type: 'button' }, 'Open');
  open.onclick = () => void showTranscript(job.id);
  const li = h(
    'li',
    { 'data-id': job.id },
    h('span', { class: 'id' }, job.id.slice(0, 8)),
    h('span', { class: `status-${job.status}` }, job.status),
    h('span', {}, new Date(job.created).toLocaleTimeString()),
    ...(job.durationSeconds !== undefined ? [h('span', {}, `${job.durationSeconds.toFixed(1)} s audio`)] : []),
    ...(names[job.id] || job.userToken ? [h('span', { class: 'muted' }, names[job.id] ?? job.userToken ?? '')] : []),
    ...extra,
  );
  if (job.status === 'completed') li.append(open);
  if (job.error) li.append(h('span', { class: 'error' }, job.error));
  return li;
}

function renderQueue(jobs: QueueEntry[]): void {
  const running = jobs.filter((j) => j.status === 'processing');
  const waiting = jobs.filter((j) => j.status === 'waiting').reverse();
  const recent = jobs.filter((j) => j.status === 'completed' || j.status === 'failed').slice(0, 10);
  $('running').replaceChildren(
    ...(running.length
      ? running.map((j) =>
          h(
            'div',
            { class: 'running' },
            h('p', {}, h('span', { class: 'id' }, j.id.slice(0, 8)), ` processing: ${j.progress ?? 0}%`),
            h('progress', { max: '100', value: String(j.progress ?? 0) }),
          ),
        )
      : [h('p', { class: 'muted' }, 'Nothing running.')]),
  );
  $('waiting').replaceChildren(...(waiting.length ? waiting.map((j) => jobItem(j)) : [h('li', { class: 'muted' }, 'None.')]));
  $('recent').replaceChildren(...(recent.length ? recent.map((j) => jobItem(j)) : [h('li', { class: 'muted' }, 'None yet.')]));

  const mine = followed ? jobs.find((j) => j.id === followed) : undefined;
  if (mine) followProgress(mine);
  // Deliveries change with job states: refresh them when a state changed.
  const statuses = jobs.map((j) => `${j.id}:${j.status}`).join();
  if (statuses !== lastStatuses) {
    lastStatuses = statuses;
    void loadDeliveries();
    void loadDevice().catch(() => undefined);
  }
}

/** The followed job's progress under the upload: 100 once it completed, then its transcript. */
function followProgress(job: QueueEntry): void {
  const bar = $<HTMLProgressElement>('job-progress');
  const done = job.status === 'completed' || job.status === 'failed';
  const percent = job.status === 'completed' ? 100 : (job.progress ?? 0);
  bar.value = percent;
  $('job-status').textContent = job.status === 'failed' ? `failed: ${job.error ?? ''}` : `${job.status} ${percent}%`;
  if (done && followed === job.id) {
    followed = undefined;
    if (job.status === 'completed') void showTranscript(job.id);
  }
}

// --- upload

function upload(file: File): void {
  const status = $('upload-status');
  const bar = $<HTMLProgressElement>('upload-progress');
  const callbackUrl = $<HTMLInputElement>('callback-url').value.trim();
  const url = uploadUrl({
    language: $<HTMLSelectElement>('language').value,
    wordConfidence: $<HTMLInputElement>('word-confidence').checked,
    // IBM's user_token goes with callbacks only (a warning otherwise).
    ...(callbackUrl ? { callbackUrl, userToken: file.name.slice(0, 100) } : {}),
  });
  const xhr = new XMLHttpRequest();
  xhr.open('POST', url);
  if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
  xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    bar.value = Math.round((e.loaded / e.total) * 100);
    status.textContent = `Uploading ${file.name}: ${formatBytes(e.loaded)} of ${formatBytes(e.total)}`;
  };
  xhr.onload = () => {
    let body: { id?: string; error?: string } = {};
    try {
      body = JSON.parse(xhr.responseText) as typeof body;
    } catch {
      // shown as the status line below
    }
    if (xhr.status === 401) return showLogin('The key was refused.');
    if (xhr.status !== 201 || !body.id) {
      status.textContent = `Upload refused (${xhr.status}): ${body.error ?? xhr.responseText}`;
      status.className = 'error';
      return;
    }
    bar.value = 100;
    followed = body.id;
    names[body.id] = file.name;
    sessionStorage.setItem(namesStorage, JSON.stringify(names));
    status.className = '';
    status.replaceChildren(
      `Uploaded ${file.name} as `,
      h('span', { class: 'id' }, body.id.slice(0, 8)),
      ': ',
      h('span', { id: 'job-status' }, 'waiting'),
      h('progress', { id: 'job-progress', max: '100', value: '0' }),
    );
  };
  xhr.onerror = () => {
    status.textContent = `Upload of ${file.name} failed: the connection broke`;
    status.className = 'error';
  };
  bar.value = 0;
  status.className = '';
  status.textContent = `Uploading ${file.name}…`;
  xhr.send(file);
}

function setUpUpload(): void {
  const drop = $('drop');
  const input = $<HTMLInputElement>('file');
  input.onchange = () => {
    const file = input.files?.[0];
    if (file) upload(file);
    input.value = '';
  };
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) upload(file);
  };
}

// --- transcript

async function showTranscript(id: string): Promise<void> {
  const body = (await (await api(`/v1/recognitions/${encodeURIComponent(id)}`)).json()) as unknown;
  const { text, words } = transcriptOf(body);
  shown = id;
  $('transcript').hidden = false;
  $('transcript-id').textContent = id.slice(0, 8);
  $('transcript-text').textContent = text || '(no speech)';
  $('words').replaceChildren(...words.map(wordChip));
}

function wordChip(w: Word): HTMLElement {
  const confidence = w.confidence === undefined ? '' : ` ${Math.round(w.confidence * 100)}%`;
  return h(
    'span',
    { class: confidenceClass(w.confidence), title: `${formatTime(w.start)}–${formatTime(w.end)}${confidence}` },
    w.word,
    ' ',
    h('small', {}, `${formatTime(w.start)}${confidence}`),
  );
}

async function download(format: string): Promise<void> {
  if (!shown) return;
  const res = await api(`/v1/recognitions/${encodeURIComponent(shown)}?format=${format}`);
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: downloadName(shown, format) });
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// --- deliveries: IBM callbacks and Azure web hooks, through their dialects' own endpoints

/** What the page lists: dead letters, pending deliveries and the recently delivered. */
type ListState = 'dead' | 'pending' | 'delivered';
// Each fills the page's list of the same id.
const listStates: ListState[] = ['dead', 'pending', 'delivered'];

/** A delivery as the page lists it, whichever dialect's target it goes to. */
interface DeliveryItem {
  id: string;
  kind: 'callback' | 'webhook';
  event: string;
  target: string;
  attempts: number;
  lastError?: string;
  nextAttempt?: string;
  delivered?: string;
  redeliver?: () => Promise<unknown>;
}

interface IbmDelivery {
  id: string;
  callback_url: string;
  event: string;
  attempts: number;
  last_error?: string;
  next_attempt?: string;
  delivered?: string;
}

interface AzureDelivery {
  id: string;
  event: string;
  attempts: number;
  lastError?: string;
  nextAttemptDateTime?: string;
  deliveredDateTime?: string;
}

/** Azure's routes as the dated API version names them (any version would do). */
const azure = (path: string, query = '') => `/speechtotext${path}?api-version=2024-11-15${query}`;
const json = async <T>(path: string): Promise<T> => (await (await api(path)).json()) as T;

async function callbackDeliveries(state: ListState): Promise<DeliveryItem[]> {
  const { deliveries } = await json<{ deliveries: IbmDelivery[] }>(`/v1/callback_deliveries?state=${state}`);
  return deliveries.map((d) => ({
    id: d.id,
    kind: 'callback',
    event: d.event,
    target: d.callback_url,
    attempts: d.attempts,
    ...(d.last_error ? { lastError: d.last_error } : {}),
    ...(d.next_attempt ? { nextAttempt: d.next_attempt } : {}),
    ...(d.delivered ? { delivered: d.delivered } : {}),
    redeliver: () => api(`/v1/callback_deliveries/${encodeURIComponent(d.id)}/redeliver`, { method: 'POST' }),
  }));
}

async function webhookDeliveries(): Promise<Record<ListState, DeliveryItem[]>> {
  const hooks = (await json<{ values: Array<{ self: string; webUrl: string }> }>(azure('/webhooks', '&top=20'))).values;
  const found: Record<ListState, DeliveryItem[]> = { dead: [], pending: [], delivered: [] };
  for (const hook of hooks) {
    const hookId = hook.self.split('?')[0]!.split('/').pop()!;
    for (const state of listStates) {
      const { values } = await json<{ values: AzureDelivery[] }>(azure(`/webhooks/${hookId}/deliveries`, `&state=${state}&top=50`));
      for (const d of values) {
        found[state].push({
          id: d.id,
          kind: 'webhook',
          event: d.event,
          target: hook.webUrl,
          attempts: d.attempts,
          ...(d.lastError ? { lastError: d.lastError } : {}),
          ...(d.nextAttemptDateTime ? { nextAttempt: d.nextAttemptDateTime } : {}),
          ...(d.deliveredDateTime ? { delivered: d.deliveredDateTime } : {}),
          redeliver: () => api(azure(`/webhooks/${hookId}/deliveries/${encodeURIComponent(d.id)}:redeliver`), { method: 'POST' }),
        });
      }
    }
  }
  return found;
}

let loadingDeliveries = false;

async function loadDeliveries(): Promise<void> {
  if (loadingDeliveries) return;
  loadingDeliveries = true;
  try {
    const [callbacks, hooks] = await Promise.all([Promise.all(listStates.map(callbackDeliveries)), webhookDeliveries()]);
    listStates.forEach((state, i) => {
      const items = [...callbacks[i]!, ...hooks[state]];
      // The recently delivered of both kinds, newest first.
      if (state === 'delivered') items.sort((a, b) => (b.delivered ?? '').localeCompare(a.delivered ?? ''));
      $(state).replaceChildren(
        ...(items.length ? items.slice(0, state === 'delivered' ? 20 : 50).map((d) => deliveryItem(d, state)) : [h('li', { class: 'muted' }, 'None.')]),
      );
    });
  } catch (err) {
    if (err instanceof Unauthorized) showLogin('The key was refused.');
  } finally {
    loadingDeliveries = false;
  }
}

function deliveryItem(d: DeliveryItem, state: ListState): HTMLLIElement {
  const li = h(
    'li',
    { 'data-id': d.id, 'data-kind': d.kind },
    h('span', {}, d.event),
    h('span', { class: 'muted' }, d.kind === 'callback' ? 'callback' : 'web hook'),
    h('span', { class: 'id' }, d.target),
    h('span', {}, `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`),
    ...(d.lastError ? [h('span', { class: 'error' }, d.lastError)] : []),
    ...(d.nextAttempt ? [h('span', {}, `next ${new Date(d.nextAttempt).toLocaleTimeString()}`)] : []),
    ...(d.delivered ? [h('span', { class: 'status-completed' }, `delivered ${new Date(d.delivered).toLocaleTimeString()}`)] : []),
  );
  if (state === 'dead' && d.redeliver) {
    const redeliver = d.redeliver;
    const button = h('button', { type: 'button', class: 'redeliver' }, 'Redeliver');
    button.onclick = async () => {
      button.disabled = true;
      try {
        await redeliver();
        li.append(h('span', { class: 'status-completed' }, 'sent again'));
      } catch (err) {
        li.append(h('span', { class: 'error' }, (err as Error).message));
        button.disabled = false;
      }
      window.setTimeout(() => void loadDeliveries(), 1500);
    };
    li.append(button);
  }
  return li;
}

// --- wiring

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  key = $<HTMLInputElement>('key').value.trim();
  sessionStorage.setItem(keyStorage, key);
  void start();
});
$('forget').onclick = () => {
  sessionStorage.removeItem(keyStorage);
  key = undefined;
  showLogin();
};
for (const button of document.querySelectorAll<HTMLButtonElement>('.downloads button')) {
  button.onclick = () => void download(button.dataset.format!).catch((err: Error) => alert(err.message));
}
$('refresh-deliveries').onclick = () => void loadDeliveries();
setUpUpload();
void start();
