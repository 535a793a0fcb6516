// EARSHOT_AUTH=none against the real server: requests naming a foreign host are refused
// in the dialect's error shape (DNS-rebinding defence); the device's own names pass.
import http from 'node:http';
import os from 'node:os';

import t from 'tap';

import { startApp } from '../helpers/app.js';

/** A plain request with the Host header set by hand (fetch would not let us). */
function get(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { Host: host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('auth none: a foreign Host gets 421 in the dialect error shape; the device names pass', async (t) => {
  const { app } = await startApp(t, { EARSHOT_AUTH: 'none', EARSHOT_API_KEY: '', EARSHOT_ALLOWED_HOSTS: 'speech.example.lan' });
  const port = app.http.port;

  const ibm = await get(port, '/v1/recognitions', `rebind.evil.example:${port}`);
  t.equal(ibm.status, 421);
  t.match(JSON.parse(ibm.body), {
    code: 421,
    code_description: 'Misdirected Request',
    error: /does not answer for the Host header "rebind\.evil\.example:\d+"/,
  });

  const azure = await get(port, '/speechtotext/v3.1/webhooks', 'rebind.evil.example');
  t.equal(azure.status, 421);
  t.match(JSON.parse(azure.body), { code: 'InvalidRequest', message: /DNS rebinding/ });

  const ipv4 = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i?.family === 'IPv4')!.address;
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `${os.hostname()}:${port}`, `${os.hostname()}.local.`, ipv4, 'SPEECH.example.lan:80']) {
    t.equal((await get(port, '/v1/recognitions', host)).status, 200, host);
  }
  t.equal((await get(port, '/healthz', 'rebind.evil.example')).status, 200, 'probes answer any name (nothing to take)');
});

t.test('auth key: the Host header is not checked (the key is the defence)', async (t) => {
  const { app } = await startApp(t);
  const res = await get(app.http.port, '/v1/recognitions', 'anything.example');
  t.equal(res.status, 401, 'no key: 401, not 421');
});
