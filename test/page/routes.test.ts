// The page's files as the server serves them, and the live feed's socket on a bare HttpServer.
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import t from 'tap';

import { HttpServer, sameOrigin, type Request } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { loadPageAssets } from '../../src/page/assets.js';
import { LiveFeed } from '../../src/page/live-feed.js';
import { pageRoutes } from '../../src/page/routes.js';

const get = (path: string, headers: Record<string, string> = {}) => ({ path, headers, params: { file: path.split('/').pop()! } }) as unknown as Request;

t.test('loadPageAssets: index.html as /, hashed assets immutable, gzip twins; nothing when not built', async (t) => {
  const dir = t.testdir();
  mkdirSync(path.join(dir, 'assets'));
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html>');
  writeFileSync(path.join(dir, 'assets', 'app-X.js'), 'console.log(1)');
  writeFileSync(path.join(dir, 'assets', 'app-X.js.gz'), gzipSync('console.log(1)'));
  writeFileSync(path.join(dir, 'notes.txt'), 'not served');
  const assets = loadPageAssets(dir);
  t.same([...assets.keys()].sort(), ['/', '/assets/app-X.js']);
  t.match(assets.get('/'), { contentType: 'text/html; charset=utf-8', immutable: false });
  t.match(assets.get('/assets/app-X.js'), { contentType: 'text/javascript; charset=utf-8', immutable: true });
  t.equal(loadPageAssets(path.join(dir, 'missing')).size, 0);

  const routes = pageRoutes(assets).routes;
  const index = routes.find((r) => r.pattern === '/')!;
  const asset = routes.find((r) => r.pattern === '/assets/:file')!;
  const page = await index.handler(get('/'));
  t.match(page.headers, { 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': /frame-ancestors 'none'/ });
  t.equal(page.body?.toString(), '<!doctype html>');
  const zipped = await asset.handler(get('/assets/app-X.js', { 'accept-encoding': 'gzip, br' }));
  t.equal(zipped.headers?.['Content-Encoding'], 'gzip');
  t.match(zipped.headers, { 'Cache-Control': /immutable/, Vary: 'Accept-Encoding' });
  const plain = await asset.handler(get('/assets/app-X.js'));
  t.equal(plain.body?.toString(), 'console.log(1)');
  t.throws(() => asset.handler(get('/assets/nope.js')), { code: 'ERR_NOT_FOUND' });
  t.throws(() => pageRoutes(new Map()).routes[0]!.handler(get('/')), { code: 'ERR_NOT_READY', message: /npm run build:ts/ });
});

t.test('sameOrigin: the Origin a browser sends must name the host the request went to', async (t) => {
  t.ok(sameOrigin('http://pi.local:8080', 'pi.local:8080'));
  t.ok(sameOrigin('https://pi.local', 'pi.local'));
  t.ok(sameOrigin('http://[::1]:8080', '[::1]:8080'));
  t.notOk(sameOrigin('http://evil.example', 'pi.local:8080'));
  t.notOk(sameOrigin('http://pi.local:9090', 'pi.local:8080'), 'another port is another origin');
  t.notOk(sameOrigin('null', 'pi.local:8080'), 'sandboxed frames and file: pages send null');
  t.notOk(sameOrigin(undefined, 'pi.local:8080'));
  t.notOk(sameOrigin('http://pi.local:8080', undefined));
});

t.test('the live feed on the server: upgraded with Origin and key, closed when the server closes', async (t) => {
  const feed = new LiveFeed(() => ({ jobs: [] }), 10);
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    groups: [pageRoutes(new Map())],
    sockets: [feed.route],
    authenticate: (req) => {
      if (req.headers.authorization !== 'Bearer k') throw Object.assign(new Error('no'), { code: 'ERR_UNAUTHORIZED' });
    },
    log: createLogger({ level: 'error' }),
    metrics: new Metrics(),
  });
  const port = await server.listen();
  t.teardown(() => {
    server.close();
    feed.stop();
  });
  const origin = `http://127.0.0.1:${port}`;
  const { socket, head } = await new Promise<{ socket: import('node:net').Socket; head: Buffer }>((resolve, reject) => {
    const req = request(`${origin}/live`, {
      headers: {
        Origin: origin,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Protocol': `earshot.live.v1, key.${Buffer.from('k').toString('base64url')}`,
      },
    });
    req.on('upgrade', (res, s, head) => {
      t.equal(res.headers['sec-websocket-protocol'], 'earshot.live.v1', 'the feed agrees to its own subprotocol, never echoes the key');
      resolve({ socket: s, head });
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  let received = head;
  /** Resolves once a frame whose first byte is `opcode` arrived (small unmasked frames; their JSON is ASCII, so no payload byte looks like one). */
  const frame = (opcode: number) =>
    new Promise<Buffer>((resolve) => {
      const look = () => {
        const at = received.indexOf(opcode);
        if (at >= 0 && received.length > at + 1) {
          socket.off('data', more);
          resolve(received.subarray(at));
        }
      };
      const more = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        look();
      };
      socket.on('data', more);
      look();
    });
  const first = await frame(0x81);
  t.match(first.subarray(2).toString(), '{"jobs":[]}', 'the first snapshot at once, as a text frame');
  const closing = frame(0x88);
  server.close();
  const close = await closing;
  t.equal(close.readUInt16BE(2), 1001, 'closed as going away when the server closes');
  socket.destroy();
});
