// Client side of the control socket: one JSON request, one JSON answer. ControlClient calls
// the endpoints of api.ts by name and returns their typed answers; controlRequest is the raw call.
import http from 'node:http';
import { ENDPOINTS, type ApiErrorBody, type ControlApi } from './api.js';

export class ControlClientError extends Error {
  constructor(
    message: string,
    /** HTTP status of a refused request; undefined when the daemon could not be reached. */
    readonly status?: number,
    readonly body?: ApiErrorBody,
  ) {
    super(message);
    this.name = 'ControlClientError';
  }
}

function unreachable(socketPath: string, err: NodeJS.ErrnoException): ControlClientError {
  const why =
    err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
      ? 'no daemon is listening there (is `weir run` running? choose the socket with --socket or -c)'
      : err.code === 'EACCES'
        ? 'permission denied (the socket is mode 0600: run as the user that runs weir)'
        : err.message;
  return new ControlClientError(`cannot reach weir at ${socketPath}: ${why}`);
}

/** Sends one request; resolves with the parsed JSON body or rejects with ControlClientError. */
export function controlRequest<T = unknown>(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: Record<string, unknown>,
  timeoutMs = 30_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath,
        method,
        path,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            reject(
              new ControlClientError(
                `weir answered with something that is not JSON (HTTP ${res.statusCode}): ${text.slice(0, 200)}`,
                res.statusCode,
              ),
            );
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const b = (parsed ?? {}) as Partial<ApiErrorBody>; // the server's refusal body (api.ts)
            const error = typeof b.error === 'string' ? b.error : `HTTP ${status}`;
            reject(
              new ControlClientError(error, status, {
                error,
                ...(Array.isArray(b.issues) ? { issues: b.issues.map(String) } : {}),
              }),
            );
          } else resolve(parsed as T); // the caller names the answer's type (ControlClient: from api.ts)
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new ControlClientError(`weir at ${socketPath} did not answer within ${timeoutMs} ms`)),
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(err instanceof ControlClientError ? err : unreachable(socketPath, err)),
    );
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Query string from defined values only. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

type Input<K extends keyof ControlApi> = Parameters<ControlApi[K]> extends [infer I] ? I : undefined;
type Answer<K extends keyof ControlApi> = Awaited<ReturnType<ControlApi[K]>>;

/** The control API over one socket: `call('status')`, `call('drain', { vip, backend })`. */
export class ControlClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Sends one call; GET inputs go in the query string, POST inputs in the body. Rejects with ControlClientError. */
  call<K extends keyof ControlApi>(
    key: K,
    ...input: Input<K> extends undefined ? [] : [Partial<Input<K>>]
  ): Promise<Answer<K>> {
    const ep = ENDPOINTS[key];
    const args = (input[0] ?? {}) as Record<string, string | number | undefined>;
    return ep.method === 'GET'
      ? controlRequest<Answer<K>>(this.socketPath, 'GET', ep.path + query(args), undefined, this.timeoutMs)
      : controlRequest<Answer<K>>(this.socketPath, 'POST', ep.path, dropUndefined(args), this.timeoutMs);
  }
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
