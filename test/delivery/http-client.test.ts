// The delivery HTTP client: address policy at connect time, no redirects, bounded time and body.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import t from 'tap';

import { defaultCallbackCidrs } from '../../src/config.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { guardedLookup, maxResponseBodyBytes, sendRequest } from '../../src/delivery/http-client.js';
import { OwnEndpoints } from '../../src/delivery/own-endpoints.js';
import { startReceiver } from '../helpers/receiver.js';
import { loopbackPolicy } from './harness.js';

const lanPolicy = new CidrPolicy(defaultCallbackCidrs);
const post = (url: string, policy = loopbackPolicy, timeoutMs = 2000) =>
  sendRequest({ method: 'POST', url, headers: { 'Content-Type': 'application/json' }, body: '{"a":"é"}', timeoutMs, policy });

t.test('a POST reaches the receiver with its headers and exact body; the answer comes back', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 201, headers: { 'X-Reply': 'ok' }, body: 'thanks' }));
  const response = await post(`${receiver.url}?token=abc`);
  t.match(response, { status: 201, body: 'thanks', truncated: false, headers: { 'x-reply': 'ok' } });
  const [got] = await receiver.waitFor(1);
  t.match(got, { method: 'POST', path: '/hook?token=abc', body: '{"a":"é"}', headers: { 'content-type': 'application/json', 'content-length': '10' } });
});

t.test('loopback is refused unless the policy names it: literal IPs, IPv4-mapped, and names resolved at connect time', async (t) => {
  const receiver = await startReceiver(t);
  await t.rejects(post(receiver.url, lanPolicy), { code: 'ERR_TARGET_FORBIDDEN', message: /127\.0\.0\.1 is a loopback address.*EARSHOT_CALLBACK_CIDRS/ });
  await t.rejects(post(`http://[::ffff:127.0.0.1]:${receiver.port}/hook`, lanPolicy), { code: 'ERR_TARGET_FORBIDDEN', message: /loopback/ });
  await t.rejects(post(`http://[::1]:${receiver.port}/hook`, lanPolicy), { code: 'ERR_TARGET_FORBIDDEN', message: /::1 is a loopback/ });
  // Node skips `lookup` for literals but not for names: this is the connect-time check.
  await t.rejects(post(`http://localhost:${receiver.port}/hook`, lanPolicy), {
    code: 'ERR_TARGET_FORBIDDEN',
    message: /host localhost resolves to .*loopback/,
  });
  t.equal(receiver.received.length, 0, 'nothing reached the receiver');
  // The same name is fine once loopback is allowed: the refusal above was the policy's.
  t.equal((await post(`http://localhost:${receiver.port}/hook`)).status, 200);
});

t.test('link-local (the metadata address), multicast and 0.0.0.0 are refused before any connection', async (t) => {
  const everything = new CidrPolicy(['0.0.0.0/0', '::/0']);
  for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/x', 'http://224.0.0.1/', 'http://0.0.0.0:1/', 'https://255.255.255.255/']) {
    await t.rejects(post(url, everything), { code: 'ERR_TARGET_FORBIDDEN' }, url);
  }
});

t.test('the guarded lookup hands the socket only allowed addresses (DNS rebinding)', async (t) => {
  const fake = (addresses: string[]) => (_h: string, _o: unknown, cb: (err: null, a: { address: string; family: number }[]) => void) =>
    cb(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  const call = (addresses: string[], all: boolean) =>
    new Promise<{ err: (Error & { code?: string }) | null; result: unknown; family?: number }>((resolve) =>
      guardedLookup(lanPolicy, 80, fake(addresses))('rebind.example', { all }, (err, result, family) => resolve({ err, result, family })),
    );
  const forbidden = await call(['127.0.0.1', '169.254.169.254'], false);
  t.match(forbidden.err, { code: 'ERR_TARGET_FORBIDDEN', message: /rebind\.example resolves to 127\.0\.0\.1, 169\.254\.169\.254/ });
  const mixed = await call(['127.0.0.1', '192.168.1.9', 'fd00::9'], true);
  t.same(mixed.result, [
    { address: '192.168.1.9', family: 4 },
    { address: 'fd00::9', family: 6 },
  ]);
  const single = await call(['::1', '10.0.0.7'], false);
  t.same([single.err, single.result, single.family], [null, '10.0.0.7', 4]);
});

t.test("the service's own endpoints are refused whatever the ranges allow: every own address, only on its ports", async (t) => {
  const receiver = await startReceiver(t);
  // The receiver stands in for the service: its port is "ours", and so is a LAN address of this device.
  const everything = new CidrPolicy(
    ['0.0.0.0/0', '::/0', '127.0.0.0/8', '::1/128'],
    new OwnEndpoints(
      () => [receiver.port],
      () => ['192.168.7.20', 'fd00::20'],
    ),
  );
  const itself = /is this earshot service itself/;
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]', '[::ffff:127.0.0.1]', '0.0.0.0', '192.168.7.20', '[fd00:0:0:0::20]']) {
    await t.rejects(post(`http://${host}:${receiver.port}/v1/models`, everything), { code: 'ERR_TARGET_FORBIDDEN', message: itself }, host);
  }
  t.equal(receiver.received.length, 0, 'nothing reached it');
  // Another address of the LAN on that port, and this device on another port, are fine.
  t.match(everything.explain('192.168.7.21', receiver.port), { allowed: true });
  t.match(everything.explain('127.0.0.1', receiver.port + 1), { allowed: true });
  t.match(everything.explain('192.168.7.20', 80), { allowed: true });
  t.match(everything.explain('fd00::20', receiver.port), { allowed: false, reason: /^\[fd00::20\]:\d+ is this earshot service itself/ });
  // Default ports count: a service on 80 is reached by a URL without a port.
  const on80 = new CidrPolicy(['127.0.0.0/8'], new OwnEndpoints(() => [80]));
  await t.rejects(post('http://127.0.0.1/hook', on80), { message: itself });
});

t.test('credentials in a target URL are refused without a request', async (t) => {
  const receiver = await startReceiver(t);
  await t.rejects(post(`http://apikey:secret@127.0.0.1:${receiver.port}/hook`), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /without credentials/,
  });
  t.equal(receiver.received.length, 0);
});

t.test('redirects are not followed: a 302 is the answer', async (t) => {
  const elsewhere = await startReceiver(t);
  const receiver = await startReceiver(t, () => ({ status: 302, headers: { Location: elsewhere.url } }));
  const response = await post(receiver.url);
  t.equal(response.status, 302);
  t.equal(response.headers.location, elsewhere.url);
  await receiver.waitFor(1);
  t.equal(elsewhere.received.length, 0, 'the redirect target was never called');
});

t.test('a target that does not answer times out, with the time in the message', async (t) => {
  const receiver = await startReceiver(t, () => 'hang');
  const started = Date.now();
  await t.rejects(post(receiver.url, loopbackPolicy, 150), {
    code: 'ERR_TARGET_TIMEOUT',
    message: `http://127.0.0.1:${receiver.port}/hook did not answer within 150 ms`,
  });
  const took = Date.now() - started;
  t.ok(took >= 140 && took < 1500, `gave up after ${took} ms`);
});

t.test('a slow body counts against the same timeout', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200);
    res.write('partial'); // and never end
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  await t.rejects(post(`http://127.0.0.1:${port}/`, loopbackPolicy, 150), { code: 'ERR_TARGET_TIMEOUT' });
});

t.test('at most 64 KiB of a response body is read', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 200, body: 'x'.repeat(1024 * 1024) }));
  const response = await post(receiver.url);
  t.equal(response.body.length, maxResponseBodyBytes);
  t.equal(response.truncated, true);
});

t.test('connection, DNS and URL errors are coded, with messages a user can act on', async (t) => {
  const receiver = await startReceiver(t);
  const port = receiver.port;
  await receiver.close();
  await t.rejects(post(`http://127.0.0.1:${port}/hook?secret=1`), {
    code: 'ERR_TARGET_UNREACHABLE',
    message: `could not deliver to http://127.0.0.1:${port}/hook: connection refused (ECONNREFUSED)`,
  });
  const anywhere = new CidrPolicy(['0.0.0.0/0', '::/0']);
  await t.rejects(post('http://earshot-test.invalid/x', anywhere), { code: 'ERR_TARGET_DNS', message: /could not resolve host earshot-test\.invalid/ });
  await t.rejects(post('ftp://192.168.1.2/x', anywhere), { code: 'ERR_INVALID_ARGUMENT', message: /an http: or https: URL/ });
  await t.rejects(post('not a url', anywhere), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('an abort signal stops the request', async (t) => {
  const receiver = await startReceiver(t, () => 'hang');
  const controller = new AbortController();
  const pending = sendRequest({ method: 'POST', url: receiver.url, headers: {}, timeoutMs: 5000, policy: loopbackPolicy, signal: controller.signal });
  await receiver.waitFor(1);
  controller.abort(new Error('stop now'));
  await t.rejects(pending, /stop now/);
});

t.test('connections are kept: a burst to one receiver makes one, not one per request', async (t) => {
  const receiver = await startReceiver(t);
  for (let i = 0; i < 5; i++) t.equal((await post(receiver.url)).status, 200);
  t.equal(receiver.connections(), 1, 'five requests, one connection');
  // A kept connection serves only the policy that admitted it: another makes its own.
  const samePolicy = new CidrPolicy(['127.0.0.0/8']);
  t.equal((await post(receiver.url, samePolicy)).status, 200);
  t.equal(receiver.connections(), 2);
});

t.test('a kept connection the receiver closed while idle: the request goes again on a new one', async (t) => {
  // The second request arrives on the kept connection: cut without an answer, as by a
  // receiver that closed the idle connection at the moment the request was sent.
  const receiver = await startReceiver(t, (_req, index) => (index === 1 ? 'reset' : { status: 200, body: `answer ${index + 1}` }));
  t.match(await post(receiver.url), { status: 200, body: 'answer 1' });
  t.match(await post(receiver.url), { status: 200, body: 'answer 3' }, 'answered on the new connection');
  t.equal(receiver.connections(), 2);
  // Cut on a new connection: no second try, the error is the request's.
  const cutting = await startReceiver(t, () => 'reset');
  await t.rejects(post(cutting.url), { code: 'ERR_TARGET_UNREACHABLE' });
  t.equal(cutting.connections(), 1, 'one connection, one try');
});
