// The control socket: JSON over HTTP/1.1 on a unix socket (mode 0600). Every bad request —
// unknown command, wrong method, bad JSON, unknown VIP — gets a 4xx with {"error": "..."};
// a handler that throws never takes the daemon down.
import http from 'node:http';
import net from 'node:net';
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { RequestError, type ConnFilter } from './runtime.js';

export interface ControlHandlers {
  status(): unknown;
  vips(): unknown;
  backends(vip?: string): unknown;
  conntrackList(filter: ConnFilter, limit: number): unknown;
  conntrackStats(): unknown;
  conntrackFlush(filter: ConnFilter): unknown;
  setDrained(vip: string, backend: string, drained: boolean): unknown;
  reload(): Promise<unknown>;
}

export interface ControlServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;
const MAX_LIST = 100_000;

type Route = (q: URLSearchParams, body: Record<string, unknown>) => unknown;

function str(obj: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw new RequestError(400, `"${key}" is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new RequestError(400, `"${key}" must be a string`);
  return v;
}

function filterOf(src: Record<string, unknown>): ConnFilter {
  const f: ConnFilter = {};
  for (const k of ['vip', 'backend', 'state', 'client'] as const) {
    const v = str(src, k, false);
    if (v !== undefined) f[k] = v;
  }
  return f;
}

function routes(h: ControlHandlers): Record<string, Partial<Record<'GET' | 'POST', Route>>> {
  return {
    '/v1/status': { GET: () => h.status() },
    '/v1/vips': { GET: () => h.vips() },
    '/v1/backends': { GET: (q) => h.backends(q.get('vip') ?? undefined) },
    '/v1/backends/drain': { POST: (_q, b) => h.setDrained(str(b, 'vip', true)!, str(b, 'backend', true)!, true) },
    '/v1/backends/undrain': { POST: (_q, b) => h.setDrained(str(b, 'vip', true)!, str(b, 'backend', true)!, false) },
    '/v1/conntrack': {
      GET: (q) => {
        const raw = q.get('limit');
        const limit = raw === null ? 100 : Number(raw);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) throw new RequestError(400, `"limit" must be an integer 1..${MAX_LIST}`);
        return h.conntrackList(filterOf(Object.fromEntries(q)), limit);
      },
    },
    '/v1/conntrack/stats': { GET: () => h.conntrackStats() },
    '/v1/conntrack/flush': { POST: (_q, b) => ({ deleted: h.conntrackFlush(filterOf(b)) }) },
    '/v1/reload': { POST: () => h.reload() },
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new RequestError(413, `request body is larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** True when something accepts connections on `socketPath` (another daemon owns it). */
function socketAlive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Listens on `socketPath` (creating its directory, replacing a stale socket file). Throws if a
 * live daemon already serves that path, so two instances can never share one socket.
 */
export async function startControlServer(socketPath: string, handlers: ControlHandlers, log: Logger): Promise<ControlServer> {
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  if (existsSync(socketPath)) {
    if (await socketAlive(socketPath)) throw new Error(`control socket ${socketPath} is in use by a running weir (give each instance its own control.socket)`);
    unlinkSync(socketPath);
  }
  const table = routes(handlers);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://weir');
    const method = req.method ?? 'GET';
    try {
      const route = table[url.pathname];
      if (!route) throw new RequestError(404, `unknown command ${method} ${url.pathname}`);
      const fn = route[method as 'GET' | 'POST'];
      if (!fn) throw new RequestError(405, `${url.pathname} takes ${Object.keys(route).join(' or ')}, not ${method}`);
      let body: Record<string, unknown> = {};
      const text = await readBody(req);
      if (text.trim() !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (e) {
          throw new RequestError(400, `request body is not valid JSON: ${(e as Error).message}`);
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new RequestError(400, 'request body must be a JSON object');
        body = parsed as Record<string, unknown>;
      }
      send(res, 200, await fn(url.searchParams, body));
    } catch (e) {
      if (e instanceof RequestError) {
        send(res, e.status, { error: e.message, ...e.details });
      } else {
        // A control-plane bug or a module's clear Error (e.g. a bad client prefix): report it, keep running.
        log.warn({ err: e, method, path: url.pathname }, 'control request failed');
        send(res, 400, { error: (e as Error).message ?? String(e) });
      }
    }
  });
  server.keepAliveTimeout = 1000;
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(socketPath, 0o600);
  server.on('error', (err) => log.error({ err }, 'control socket error'));
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        try {
          unlinkSync(socketPath);
        } catch {
          // already gone
        }
      }),
  };
}
