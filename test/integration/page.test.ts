// The device's page in a real browser: Debian's chromium driven by playwright-core
// against the real service. Load the page, enter the key, upload jfk.mp3 with a callback
// URL and an Azure web hook that fail, watch the job's progress reach 100, read the transcript, download its
// SRT, redeliver dead letters (a callback's and a web hook's). Screenshots go to var/test-artifacts/page/ (gitignored);
// EARSHOT_UPDATE_SCREENSHOT=1 also writes the README's docs/page.png.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';

import { chromium, type Browser, type Page } from 'playwright-core';
import t from 'tap';

import { projectRoot } from '../../src/paths.js';
import { apiKey, startApp } from '../helpers/app.js';
import { freePort } from '../helpers/nats-server.js';
import { JFK_MP3 } from '../helpers/audio-fixtures.js';
import { until } from '../helpers/poll.js';
import { startReceiver } from '../helpers/receiver.js';

const browserPath = [process.env.EARSHOT_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const artifacts = path.join(projectRoot, 'var', 'test-artifacts', 'page');

if (!browserPath && process.env.CI !== 'true') {
  t.plan(0, "the page's browser test: no chromium here (apt-get install chromium, or scripts/install-deps); CI runs it");
} else {
  t.ok(browserPath, 'chromium is installed (CI=true: scripts/install-deps installs it)');
  if (browserPath) run(browserPath);
}

async function launch(t: { teardown(fn: () => unknown): void }, executablePath: string): Promise<Browser> {
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  return browser;
}

/** Where a failing test looks first. */
async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

/** A WebSocket upgrade by hand (Node 20 has no WebSocket client): the status it gets. */
function upgrade(base: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/live`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

const keyToken = `key.${Buffer.from(apiKey).toString('base64url')}`;

function run(executablePath: string): void {
  t.test('the page: key, upload with progress, live queue, transcript, SRT download, redelivery of a dead letter', async (t) => {
    const receiver = await startReceiver(t, () => ({ status: 500 }), { path: '/callback' });
    const { base, auth } = await startApp(t, { EARSHOT_RETRY_SCHEDULE: '10ms,10ms' });
    const q = encodeURIComponent(receiver.url);
    t.equal((await fetch(`${base}/v1/register_callback?callback_url=${q}`, { method: 'POST', headers: auth })).status, 201);
    // An Azure web hook too: every job fires it, and its dead letters are on the page as well.
    const hookReceiver = await startReceiver(t, () => ({ status: 500 }), { path: '/hook' });
    const created = await fetch(`${base}/speechtotext/v3.1/webhooks`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ displayName: 'page', webUrl: hookReceiver.url, events: { transcriptionCompletion: true } }),
    });
    t.equal(created.status, 201);
    const hook = (await created.json()) as { self: string };
    await until(
      async () => ((await (await fetch(hook.self, { headers: auth })).json()) as { status: string }).status === 'Succeeded',
      10_000,
      'the web hook to pass its challenge',
    );

    const browser = await launch(t, executablePath);
    // A phone's screen: the page must be usable there.
    const context = await browser.newContext({ viewport: { width: 412, height: 915 }, deviceScaleFactor: 1, acceptDownloads: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      // The first /device without a key is refused by design; anything else is a problem (CSP violations among them).
      if (m.type() === 'error' && !/401/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) outside.push(r.url());
    });
    let frames = 0;
    page.on('websocket', (ws) => ws.on('framereceived', () => frames++));

    const response = await page.goto(`${base}/`);
    t.equal(response?.status(), 200);
    const headers = response!.headers();
    t.match(headers['content-security-policy'], /default-src 'self'.*frame-ancestors 'none'/);
    t.equal(headers['x-content-type-options'], 'nosniff');
    t.notOk(headers['access-control-allow-origin'], 'no CORS');

    await page.locator('#key').waitFor();
    await screenshot(page, '1-key');
    await page.fill('#key', apiKey);
    await page.click('#unlock');
    await page.locator('#device-facts dt', { hasText: 'Model' }).waitFor();
    t.match(await page.textContent('#device-facts'), /ggml-test\.en-q5_0\.bin/);
    t.equal(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('earshot.key')), apiKey, 'kept for the tab only');
    t.same(await context.cookies(), [], 'no cookies');
    await page.locator('#connection', { hasText: 'live' }).waitFor();

    // Upload with a callback URL that answers 500: its callbacks become dead letters.
    await page.fill('#callback-url', receiver.url);
    await page.setInputFiles('#file', JFK_MP3);
    await page.locator('#upload-status', { hasText: 'Uploaded' }).waitFor({ timeout: 30_000 });
    t.equal(await page.getAttribute('#upload-progress', 'value'), '100', 'upload progress 100');
    const seen = new Set<number>();
    await until(
      async () => {
        const value = await page.evaluate(() => (globalThis as any).document.getElementById('job-progress')?.value as number | undefined);
        if (value !== undefined) seen.add(value);
        return value === 100;
      },
      120_000,
      'the job progress to reach 100',
    );
    t.ok(seen.has(100), `job progress seen: ${[...seen].join(', ')}`);
    t.ok(frames > 1, `the live feed pushed ${frames} snapshots`);
    // The engine's 100 % can be shown while the job is still processing: the completed state is the next snapshot.
    await page.locator('#job-status', { hasText: 'completed' }).waitFor({ timeout: 30_000 });
    t.match(await page.textContent('#job-status'), /completed 100%/);

    // The transcript the page shows is the API's.
    await page.locator('#transcript').waitFor({ state: 'visible', timeout: 10_000 });
    const jobs = (await (await fetch(`${base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: Array<{ id: string; user_token?: string }> };
    const job = jobs.recognitions.find((r) => r.user_token === 'jfk.mp3');
    t.ok(job, 'the upload is a job labelled with the file name');
    const detail = (await (await fetch(`${base}/v1/recognitions/${job!.id}`, { headers: auth })).json()) as any;
    const apiText = detail.results[0].results.map((r: any) => r.alternatives[0].transcript.trim()).join(' ');
    t.equal(await page.textContent('#transcript-text'), apiText || '(no speech)');
    const words = detail.results[0].results.flatMap((r: any) => r.alternatives[0].timestamps);
    t.equal(await page.locator('#words > span').count(), words.length, 'one chip per word, with times');
    await screenshot(page, '2-transcript');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('.downloads button[data-format=srt]')]);
    t.equal(download.suggestedFilename(), `earshot-${job!.id.slice(0, 8)}.srt`);
    const srt = readFileSync((await download.path())!, 'utf8');
    const apiSrt = await (await fetch(`${base}/v1/recognitions/${job!.id}?format=srt`, { headers: auth })).text();
    t.equal(srt, apiSrt, 'the download is the SRT the API serves');
    if (words.length) t.match(srt, /^1\r?\n\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d\r?\n/);

    // The callbacks and the web hook's delivery died (two retries 10 ms apart): redeliver one of each from the page.
    const dead = page.locator('#dead li', { has: page.locator('button.redeliver') });
    const deadOf = (kind: string) => page.locator(`#dead li[data-kind=${kind}]`, { has: page.locator('button.redeliver') });
    await until(
      async () => {
        await page.click('#refresh-deliveries');
        await page.waitForTimeout(100);
        return (await deadOf('callback').count()) === 2 && (await deadOf('webhook').count()) === 1;
      },
      20_000,
      'the dead letters on the page (two callbacks, one web hook delivery)',
    );
    await screenshot(page, '3-dead-letters');
    const redelivered: string[] = [];
    for (const [kind, to] of [
      ['callback', receiver],
      ['webhook', hookReceiver],
    ] as const) {
      to.answer = () => ({ status: 200 });
      const letter = deadOf(kind).first();
      const id = await letter.getAttribute('data-id');
      redelivered.push(id!);
      const attempts = to.events().length;
      await letter.locator('button.redeliver').click();
      await letter.locator('text=sent again').waitFor();
      const sent = await to.until((e) => e.slice(attempts).some((r) => r.headers['webhook-id'] === id), `the redelivery of the ${kind}`);
      t.ok(sent.length > attempts, `the dead ${kind} delivery was sent again`);
    }
    await until(
      async () => {
        await page.click('#refresh-deliveries');
        await page.waitForTimeout(100);
        return (await dead.count()) === 1;
      },
      10_000,
      'the redelivered letters to leave the dead letters',
    );
    // Their outcomes are stored just after the receivers answered: on the page once they are.
    await until(
      async () => {
        await page.click('#refresh-deliveries');
        await page.waitForTimeout(100);
        for (const id of redelivered) if (!(await page.locator(`#delivered li[data-id="${id}"]`).count())) return false;
        return true;
      },
      10_000,
      'the redelivered letters among the recently delivered',
    );
    for (const id of redelivered) {
      t.match(await page.textContent(`#delivered li[data-id="${id}"]`), /delivered \S/, `${id} among the recently delivered, with its time`);
    }

    t.same(problems, [], 'no errors in the console (CSP violations included)');
    t.same(outside, [], 'nothing fetched from anywhere but the device');

    // The README's picture: a wider window, the same page.
    await page.click('#transcript summary');
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.waitForTimeout(200);
    await screenshot(page, '4-wide');
    if (process.env.EARSHOT_UPDATE_SCREENSHOT === '1') await page.screenshot({ path: path.join(projectRoot, 'docs', 'page.png'), fullPage: true });
  });

  t.test('the page from another origin: the feed refuses it, the API answers no CORS, nothing without the key', async (t) => {
    const { base } = await startApp(t);
    const asset = (await (await fetch(`${base}/`)).text()).match(/src="(\/assets\/app-[^"]+\.js)"/)?.[1];
    t.ok(asset, 'index.html names its script');
    const js = await fetch(`${base}${asset}`, { headers: { 'Accept-Encoding': 'gzip' } });
    t.equal(js.status, 200, 'static assets need no key');
    t.match(js.headers.get('cache-control'), /immutable/);
    t.equal((await fetch(`${base}/assets/nope.js`)).status, 404);
    t.equal((await fetch(`${base}/device`)).status, 401, 'the API needs the key');
    t.equal((await fetch(`${base}/device`, { headers: { Authorization: `Bearer ${apiKey}` } })).status, 200);

    const own = base;
    t.equal(await upgrade(base, { Origin: own, 'Sec-WebSocket-Protocol': `earshot.live.v1, ${keyToken}` }), 101, 'the own page with the key');
    t.equal(
      await upgrade(base, { Origin: 'http://evil.example', 'Sec-WebSocket-Protocol': `earshot.live.v1, ${keyToken}` }),
      403,
      'another origin, even with the key',
    );
    t.equal(await upgrade(base, { 'Sec-WebSocket-Protocol': `earshot.live.v1, ${keyToken}` }), 403, 'no Origin');
    t.equal(await upgrade(base, { Origin: own, 'Sec-WebSocket-Protocol': 'earshot.live.v1' }), 401, 'no key');
    t.equal(
      await upgrade(base, { Origin: own, 'Sec-WebSocket-Protocol': `earshot.live.v1, key.${Buffer.from('wrong-key-0123456789').toString('base64url')}` }),
      401,
    );
    t.equal(await upgrade(base, { Origin: own, Cookie: `key=${apiKey}` }), 400, 'no subprotocol, no cookie auth');

    // A page on another origin can neither read the API nor open the feed.
    const browser = await launch(t, executablePath);
    const page = await browser.newPage();
    await page.route('http://evil.example/', (route) => route.fulfill({ contentType: 'text/html', body: '<html><body>evil</body></html>' }));
    await page.goto('http://evil.example/');
    const outcome = await page.evaluate(
      async ({ base, key }) => {
        const read = await fetch(`${base}/device`, { headers: { Authorization: `Bearer ${key}` } }).then(
          () => 'read',
          () => 'blocked',
        );
        const feed = await new Promise<string>((resolve) => {
          const ws = new WebSocket(`${base.replace('http', 'ws')}/live`, ['earshot.live.v1', `key.${btoa(key).replace(/=+$/, '')}`]);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('refused');
        });
        return { read, feed };
      },
      { base, key: apiKey },
    );
    t.same(outcome, { read: 'blocked', feed: 'refused' });

    // What API clients never send, a browser always does: a change from another site's page is refused.
    const forged = await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent('http://127.0.0.1:9/cb')}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, Origin: 'http://evil.example' },
    });
    t.equal(forged.status, 403);
    t.match(await forged.json(), { code: 403, code_description: 'Forbidden', error: /another site \(Origin http:\/\/evil\.example\)/ }, "in IBM's shape");
  });

  t.test('EARSHOT_AUTH=none: the page asks for no key; a fleet device whose broker is away says it works alone', async (t) => {
    // A fleet device (EARSHOT_FLEET_URL) whose broker does not answer: it works alone, and says so.
    const { base } = await startApp(t, { EARSHOT_AUTH: 'none', EARSHOT_FLEET_URL: `nats://127.0.0.1:${await freePort()}` });
    const browser = await launch(t, executablePath);
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.locator('#device-facts dt', { hasText: 'Model' }).waitFor();
    t.match(await page.textContent('#device-facts'), /Fleet(connecting to the broker…|broker unreachable: working alone)/, 'the fleet link on the page');
    t.ok(await page.locator('#login').isHidden(), 'no key form');
    t.ok(await page.locator('#forget').isHidden());
    await page.locator('#connection', { hasText: 'live' }).waitFor();

    // Dropped on the drop zone, as a person would (a DataTransfer holding the file).
    const bytes = readFileSync(JFK_MP3).toString('base64');
    const dataTransfer = await page.evaluateHandle((b64) => {
      const g = globalThis as any;
      const data = Uint8Array.from(g.atob(b64), (c: string) => c.charCodeAt(0));
      const transfer = new g.DataTransfer();
      transfer.items.add(new g.File([data], 'dropped.mp3', { type: 'audio/mpeg' }));
      return transfer;
    }, bytes);
    await page.dispatchEvent('#drop', 'dragover', { dataTransfer });
    t.match(await page.getAttribute('#drop', 'class'), /\bover\b/, 'the drop zone shows it is a target');
    await page.dispatchEvent('#drop', 'drop', { dataTransfer });
    await page.locator('#upload-status', { hasText: 'Uploaded dropped.mp3' }).waitFor({ timeout: 30_000 });
    await page.locator('#job-status', { hasText: 'completed 100%' }).waitFor({ timeout: 120_000 });
    await page.locator('#transcript').waitFor({ state: 'visible', timeout: 10_000 });
    t.match(await page.textContent('#recent'), /dropped\.mp3/, 'in the recent results');

    // Without a key, another site's page could post audio as a simple request (text/plain,
    // which IBM's route sniffs). Chromium's private network checks stop it before it leaves
    // the browser here; other browsers have none. Sent as a browser sends it: refused.
    const jobs = async () => ((await (await fetch(`${base}/v1/recognitions`)).json()) as { recognitions: unknown[] }).recognitions.length;
    const before = await jobs();
    const forged = await fetch(`${base}/v1/recognitions`, {
      method: 'POST',
      headers: { Origin: 'http://evil.example', 'Content-Type': 'text/plain' },
      body: readFileSync(JFK_MP3),
    });
    t.equal(forged.status, 403, 'refused');
    const own = await fetch(`${base}/v1/recognitions`, {
      method: 'POST',
      headers: { Origin: base, 'Content-Type': 'audio/mpeg' },
      body: readFileSync(JFK_MP3),
    });
    t.equal(own.status, 201, "from the device's own page: accepted");
    t.equal(await jobs(), before + 1, "another site's page created no job");
  });
}
