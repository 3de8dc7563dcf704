// HTTP endpoint for Prometheus and health checkers, on a TCP address or a unix socket:
// GET /metrics renders the registry (text format 0.0.4), GET /healthz answers while the process
// serves requests, GET /readyz answers 200 when `ready()` has no complaint and 503 with the
// complaints otherwise (systemd, Kubernetes probes, load-balancer checks). Any other path is 404.
import http from 'node:http';
import { lstatSync, unlinkSync } from 'node:fs';
import type { Registry } from 'prom-client';

export type MetricsListen = { host: string; port: number } | { path: string };

export interface MetricsServer {
  /** "127.0.0.1:9473", "[::1]:9473" or the socket path (the real port when 0 was asked). */
  address: string;
  close(): Promise<void>;
}

export interface HealthEndpoints {
  /** Reasons the process is not ready to serve; empty when ready. */
  notReady(): string[];
}

const TEXT = 'text/plain; charset=utf-8';

async function handle(
  registry: Registry,
  health: HealthEndpoints | undefined,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const known = path === '/metrics' || (health !== undefined && (path === '/healthz' || path === '/readyz'));
  if (!known) {
    res
      .writeHead(404, { 'content-type': TEXT })
      .end(`not found: metrics are at /metrics${health ? ', health at /healthz and /readyz' : ''}\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': TEXT }).end('method not allowed\n');
    return;
  }
  let status = 200;
  let type = TEXT;
  let body: string;
  if (path === '/healthz') body = 'ok\n';
  else if (path === '/readyz') {
    let why: string[];
    try {
      why = health!.notReady();
    } catch (e) {
      why = [`readiness check failed: ${(e as Error).message}`];
    }
    status = why.length === 0 ? 200 : 503;
    body = why.length === 0 ? 'ready\n' : `not ready:\n${why.map((w) => `- ${w}\n`).join('')}`;
  } else {
    try {
      body = await registry.metrics();
      type = registry.contentType;
    } catch (e) {
      status = 500;
      body = `metrics collection failed: ${(e as Error).message}\n`;
    }
  }
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Starts serving `registry` (and, with `health`, /healthz and /readyz). A leftover unix socket at
 * `path` is replaced (any other file there is an error). Rejects with the listen error
 * (EADDRINUSE, EACCES, ...).
 */
export function startMetricsServer(
  listen: MetricsListen,
  registry: Registry,
  health?: HealthEndpoints,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => void handle(registry, health, req, res));
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
