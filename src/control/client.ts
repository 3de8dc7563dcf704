// Client side of the control socket: one JSON request, one JSON answer, or a streamed (NDJSON)
// answer read line by line. ControlClient calls the endpoints of api.ts by name and returns their
// typed answers; controlRequest and controlStream are the raw calls.
import http from 'node:http';
import { ENDPOINTS, type ApiErrorBody, type ControlApi, type Streamed } from './api.js';

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

/** The refusal in a 4xx/5xx answer's JSON body (api.ts ApiErrorBody), as a ControlClientError. */
function refused(status: number, parsed: unknown): ControlClientError {
  const b = (parsed ?? {}) as Partial<ApiErrorBody>; // the server's refusal body (api.ts)
  const error = typeof b.error === 'string' ? b.error : `HTTP ${status}`;
  return new ControlClientError(error, status, {
    error,
    ...(Array.isArray(b.issues) ? { issues: b.issues.map(String) } : {}),
  });
}

/**
 * GETs a streamed answer (api.ts Streamed): calls `onItem` with each NDJSON line's value as it
 * arrives, so neither side holds the whole answer, and resolves with the closing summary. A
 * refusal rejects with ControlClientError, as controlRequest does; so does a stream cut short.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the items' shape (ControlClient.stream: from api.ts)
export function controlStream<T, S>(
  socketPath: string,
  path: string,
  onItem: (item: T) => void,
  timeoutMs = 30_000,
): Promise<S> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'GET', path, timeout: timeoutMs }, (res) => {
      const status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      let rest = '';
      let summary: { value: S } | null = null;
      let failed = false;
      const fail = (e: Error) => {
        if (failed) return;
        failed = true;
        reject(e);
        res.destroy();
      };
      if (status >= 400) {
        res.on('data', (c: string) => (rest += c));
        res.on('end', () => {
          try {
            reject(refused(status, JSON.parse(rest)));
          } catch {
            reject(new ControlClientError(`weir answered HTTP ${status}: ${rest.slice(0, 200)}`, status));
          }
        });
        return;
      }
      res.on('data', (c: string) => {
        rest += c;
        let nl: number;
        while (!failed && (nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          let v: unknown;
          try {
            v = JSON.parse(line);
          } catch {
            return fail(new ControlClientError(`weir sent a line that is not JSON: ${line.slice(0, 200)}`, status));
          }
          const sum = (v as { summary?: S } | null)?.summary;
          if (sum !== undefined) summary = { value: sum };
          else onItem(v as T); // the endpoint's item type (api.ts)
        }
      });
      res.on('end', () => {
        if (failed) return;
        if (summary) resolve(summary.value);
        else reject(new ControlClientError(`weir's answer to ${path} was cut short`, status));
      });
      res.on('error', (e) => fail(e));
      res.on('aborted', () => fail(new ControlClientError(`weir's answer to ${path} was cut short`, status)));
    });
    req.on('timeout', () =>
      req.destroy(new ControlClientError(`weir at ${socketPath} did not answer within ${timeoutMs} ms`)),
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(err instanceof ControlClientError ? err : unreachable(socketPath, err)),
    );
    req.end();
  });
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
          if (status >= 400) reject(refused(status, parsed));
          else resolve(parsed as T); // the caller names the answer's type (ControlClient: from api.ts)
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
/** Endpoints whose answer is streamed (api.ts Streamed), and the rest. */
type StreamKey = {
  [K in keyof ControlApi]: ReturnType<ControlApi[K]> extends Streamed<unknown, unknown> ? K : never;
}[keyof ControlApi];
type CallKey = Exclude<keyof ControlApi, StreamKey>;
type ItemOf<K extends StreamKey> = ReturnType<ControlApi[K]> extends Streamed<infer T, unknown> ? T : never;
type SummaryOf<K extends StreamKey> = ReturnType<ControlApi[K]> extends Streamed<unknown, infer S> ? S : never;

/** The control API over one socket: `call('status')`, `call('drain', { vip, backend })`. */
export class ControlClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Sends one call; GET inputs go in the query string, POST inputs in the body. Rejects with ControlClientError. */
  call<K extends CallKey>(key: K, ...input: Input<K> extends undefined ? [] : [Partial<Input<K>>]): Promise<Answer<K>> {
    const ep = ENDPOINTS[key];
    const args = (input[0] ?? {}) as Record<string, string | number | undefined>;
    return ep.method === 'GET'
      ? controlRequest<Answer<K>>(this.socketPath, 'GET', ep.path + query(args), undefined, this.timeoutMs)
      : controlRequest<Answer<K>>(this.socketPath, 'POST', ep.path, dropUndefined(args), this.timeoutMs);
  }

  /** Calls a streamed endpoint: `onItem` gets each item as it arrives; resolves with the summary. */
  stream<K extends StreamKey>(
    key: K,
    input: Partial<Input<K>>,
    onItem: (item: ItemOf<K>) => void,
  ): Promise<SummaryOf<K>> {
    const ep = ENDPOINTS[key];
    const args = input as Record<string, string | number | undefined>;
    return controlStream<ItemOf<K>, SummaryOf<K>>(this.socketPath, ep.path + query(args), onItem, this.timeoutMs);
  }
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
