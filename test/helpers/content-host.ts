import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback HTTP server that serves what `handle` writes: the host of audio URLs in tests. */
export interface ContentHost {
  /** `http://127.0.0.1:<port>` */
  base: string;
  port: number;
  /** Paths requested so far. */
  requests: string[];
}

/** Starts a content host on 127.0.0.1 and a free port; closed (connections and all) when the test ends. */
export async function startContentHost(
  t: { teardown(fn: () => unknown): void },
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<ContentHost> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, port, requests };
}
