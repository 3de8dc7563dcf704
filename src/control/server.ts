// The control socket's server: JSON over HTTP/1.1 on a unix socket (mode 0600), routed by the
// endpoint table of api.ts. Every request is validated by its zod schema before the handler
// sees it; every refusal is a JSON {"error"} with its status, mapped here from the errors of
// src/errors.ts; a handler that throws anything else is a 500 that is logged, and never takes
// the daemon down.
import http from 'node:http';
import net from 'node:net';
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { ZodError } from 'zod';
import type { Logger } from '../log.js';
import { InvalidInputError, NotFoundError, RejectedError } from '../errors.js';
import { ENDPOINTS, isStreamed, type ApiErrorBody, type ControlApi, type Streamed } from './api.js';

export interface ControlServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** Largest request body read; a larger one is answered 413 and the connection closed. */
export const MAX_BODY = 64 * 1024;

/** An HTTP-level refusal (unknown path, wrong method, body too large or not JSON). */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The one place where refusals become HTTP statuses. */
function refusal(e: unknown): { status: number; body: ApiErrorBody } | null {
  if (e instanceof HttpError) return { status: e.status, body: { error: e.message } };
  if (e instanceof NotFoundError) return { status: 404, body: { error: e.message } };
  if (e instanceof InvalidInputError) return { status: 400, body: { error: e.message } };
  if (e instanceof RejectedError)
    return { status: 422, body: { error: e.message, ...(e.issues.length ? { issues: e.issues } : {}) } };
  return null;
}

function zodMessage(e: ZodError): string {
  return e.issues.map((i) => i.message).join('; ');
}

function send(res: http.ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/**
 * Writes a Streamed answer as NDJSON, page by page, waiting for the socket to drain between
 * pages (so a slow reader holds back the scan instead of the daemon's memory). A client that
 * goes away ends the scan. An error once lines are out can only cut the stream short.
 */
async function sendStream(res: http.ServerResponse, body: Streamed<unknown, unknown>, log: Logger): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  let gone = false;
  res.on('close', () => (gone = true));
  const pages = body.pages();
  try {
    for (;;) {
      const r = await pages.next();
      if (gone) {
        await pages.return(undefined);
        return;
      }
      if (r.done) {
        res.end(JSON.stringify({ summary: r.value }) + '\n');
        return;
      }
      let text = '';
      for (const item of r.value) text += JSON.stringify(item) + '\n';
      if (!res.write(text))
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
    }
  } catch (err) {
    log.error({ err }, 'streamed control answer failed');
    res.destroy(err as Error);
  }
}

/** Reads the body; past MAX_BODY it stops keeping bytes and rejects once the client is done sending. */
function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) reject(new HttpError(413, `request body is larger than ${MAX_BODY} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
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

type Key = keyof ControlApi;

/** path → method → the ControlApi call it names. */
function routeTable(): Map<string, Map<string, Key>> {
  const t = new Map<string, Map<string, Key>>();
  for (const [key, ep] of Object.entries(ENDPOINTS) as [Key, (typeof ENDPOINTS)[Key]][]) {
    const m = t.get(ep.path) ?? new Map<string, Key>();
    m.set(ep.method, key);
    t.set(ep.path, m);
  }
  return t;
}

async function handle(
  api: ControlApi,
  routes: Map<string, Map<string, Key>>,
  req: http.IncomingMessage,
): Promise<unknown> {
  const url = new URL(req.url ?? '/', 'http://weir');
  const method = req.method ?? 'GET';
  const byMethod = routes.get(url.pathname);
  if (!byMethod) throw new HttpError(404, `unknown command ${method} ${url.pathname}`);
  const key = byMethod.get(method);
  if (!key) throw new HttpError(405, `${url.pathname} takes ${[...byMethod.keys()].join(' or ')}, not ${method}`);
  const text = await readBody(req);
  let raw: unknown = Object.fromEntries(url.searchParams);
  if (method === 'POST') {
    raw = {};
    if (text.trim() !== '') {
      try {
        raw = JSON.parse(text);
      } catch (e) {
        throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
      }
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
        throw new HttpError(400, 'request body must be a JSON object');
    }
  }
  const input = ENDPOINTS[key].input.safeParse(raw);
  if (!input.success) throw new HttpError(400, zodMessage(input.error));
  // The schema checked the shape of exactly this call's input.
  const handlers = api as unknown as Record<Key, (input: unknown) => unknown>;
  return await handlers[key](input.data);
}

/**
 * Listens on `socketPath` (creating its directory, replacing a stale socket file). Throws if a
 * live daemon already serves that path, so two instances can never share one socket.
 */
export async function startControlServer(socketPath: string, api: ControlApi, log: Logger): Promise<ControlServer> {
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  if (existsSync(socketPath)) {
    if (await socketAlive(socketPath))
      throw new Error(
        `control socket ${socketPath} is in use by a running weir (give each instance its own control.socket)`,
      );
    unlinkSync(socketPath);
  }
  const routes = routeTable();
  const server = http.createServer((req, res) => {
    handle(api, routes, req).then(
      (body) => (isStreamed(body) ? void sendStream(res, body, log) : send(res, 200, body)),
      (e: unknown) => {
        const r = refusal(e);
        if (r) return send(res, r.status, r.body, r.status === 413);
        // A bug in the daemon: say so, log it, keep running.
        log.error({ err: e, method: req.method, path: req.url }, 'control request failed');
        send(res, 500, { error: `internal error: ${(e as Error)?.message ?? String(e)}` } satisfies ApiErrorBody);
      },
    );
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
