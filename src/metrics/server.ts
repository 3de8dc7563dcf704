// HTTP endpoint for Prometheus: GET /metrics renders the registry (text format 0.0.4) on a
// TCP address or a unix socket; any other path is 404.
import http from 'node:http';
import { lstatSync, unlinkSync } from 'node:fs';
import { CONTENT_TYPE } from './exposition.js';
import type { Registry } from './registry.js';

export type MetricsListen = { host: string; port: number } | { path: string };

export interface MetricsServer {
  /** "127.0.0.1:9473", "[::1]:9473" or the socket path (the real port when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

function handle(registry: Registry, req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  let body: string;
  try {
    body = registry.render();
  } catch (e) {
    res
      .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`metrics collection failed: ${(e as Error).message}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Starts serving `registry`. A leftover unix socket at `path` is replaced (any other file there
 * is an error). Rejects with the listen error (EADDRINUSE, EACCES, ...).
 */
export function startMetricsServer(listen: MetricsListen, registry: Registry): Promise<MetricsServer> {
  const server = http.createServer((req, res) => handle(registry, req, res));
  server.keepAliveTimeout = 5000;
  if ('path' in listen) {
    let st;
    try {
      st = lstatSync(listen.path);
    } catch {
      st = undefined;
    }
    if (st?.isSocket()) unlinkSync(listen.path);
    else if (st) return Promise.reject(new Error(`metrics socket path ${listen.path} exists and is not a socket`));
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = (): void => {
      server.off('error', reject);
      const a = server.address();
      const address =
        typeof a === 'string' || a === null
          ? (a ?? (listen as { path: string }).path)
          : a.family === 'IPv6'
            ? `[${a.address}]:${a.port}`
            : `${a.address}:${a.port}`;
      resolve({
        address,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    };
    if ('path' in listen) server.listen(listen.path, ready);
    else server.listen(listen.port, listen.host, ready);
  });
}
