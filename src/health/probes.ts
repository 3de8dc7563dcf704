// Active probes: tcp (connect), http (GET a path, check the status), udp (send a payload, await a
// reply). Each is one async function bounded by a deadline and an AbortSignal; it never throws, it
// returns ok | fail (the backend answered "no") | timeout (no answer in time) | error (anything
// else, e.g. EHOSTUNREACH). Sockets come from a ProbeTransport, so a through-tunnel transport
// (dsr-gre: the probe encapsulated exactly like client traffic, built on the data plane later)
// can stand in for the kernel's.
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';

export type ProbeOutcome = 'ok' | 'fail' | 'timeout' | 'error';

export interface ProbeResult {
  outcome: ProbeOutcome;
  /** Short reason for logs and `weir backends`: "connected", "status 500", "ECONNREFUSED", "timeout after 1000 ms". */
  detail: string;
  latencyMs: number;
}

export interface ProbeTarget {
  address: string;
  port: number;
}

export interface ProbeSocketOptions {
  /** Local address to send from. */
  sourceAddress?: string;
  /** The VIP the probe is for; the tunnel transport connects to it (kernelTransport ignores it). */
  vipAddress?: string;
}

/**
 * Where probe sockets come from. Both methods reject with signal.reason when the signal aborts and
 * release everything they opened; a rejection with an Error carrying `code` (ECONNREFUSED, …) says
 * what the network answered.
 */
export interface ProbeTransport {
  readonly name: string;
  /** A connected byte stream to the target (TCP handshake done). The caller destroys it. */
  connect(target: ProbeTarget, opts: ProbeSocketOptions, signal: AbortSignal): Promise<Duplex>;
  /** Sends one datagram and resolves with the first datagram that comes back. */
  exchange(target: ProbeTarget, payload: Buffer, opts: ProbeSocketOptions, signal: AbortSignal): Promise<Buffer>;
}

/** Reason a probe's own deadline aborts with (told apart from the caller's abort). */
export class ProbeTimeout extends Error {
  constructor(readonly ms: number) {
    super(`timeout after ${ms} ms`);
    this.name = 'ProbeTimeout';
  }
}

/** Plain kernel sockets: net.connect and a connected dgram socket. */
export const kernelTransport: ProbeTransport = {
  name: 'kernel',
  connect(target, opts, signal) {
    return new Promise<Duplex>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const sock = net.connect({ host: target.address, port: target.port, localAddress: opts.sourceAddress });
      const done = () => {
        signal.removeEventListener('abort', onAbort);
        sock.removeListener('error', onError);
        sock.removeListener('connect', onConnect);
      };
      const onAbort = () => {
        done();
        sock.destroy();
        reject(signal.reason);
      };
      const onError = (e: Error) => {
        done();
        sock.destroy();
        reject(e);
      };
      const onConnect = () => {
        done();
        sock.setNoDelay(true);
        resolve(sock);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      sock.once('error', onError);
      sock.once('connect', onConnect);
    });
  },
  exchange(target, payload, opts, signal) {
    return new Promise<Buffer>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const sock = dgram.createSocket(net.isIPv6(target.address) ? 'udp6' : 'udp4');
      let closed = false;
      const finish = (err: Error | null, reply?: Buffer) => {
        if (closed) return;
        closed = true;
        signal.removeEventListener('abort', onAbort);
        sock.close();
        if (err) reject(err);
        else resolve(reply as Buffer);
      };
      const onAbort = () => finish(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      // A connected socket only accepts datagrams from the target, and an ICMP port unreachable
      // comes back as ECONNREFUSED on it.
      sock.on('error', (e) => finish(e));
      sock.on('message', (msg) => finish(null, msg));
      sock.bind({ port: 0, address: opts.sourceAddress }, () => {
        if (closed) return;
        sock.connect(target.port, target.address, (err?: Error) => {
          if (err) return finish(err);
          if (closed) return;
          sock.send(payload, (e) => {
            if (e) finish(e);
          });
        });
      });
    });
  },
};

/** Errors that mean the backend (or its host) answered "no" rather than "nothing" or "can't tell". */
const REFUSALS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

function classify(e: unknown, started: number): ProbeResult {
  const latencyMs = performance.now() - started;
  if (e instanceof ProbeTimeout) return { outcome: 'timeout', detail: e.message, latencyMs };
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return { outcome: REFUSALS.has(code) ? 'fail' : 'error', detail: code, latencyMs };
  if (e instanceof Error && e.name === 'AbortError') return { outcome: 'error', detail: 'aborted', latencyMs };
  return { outcome: 'error', detail: e instanceof Error ? e.message : String(e), latencyMs };
}

/** Runs `body` under a deadline of timeoutMs joined with the caller's signal; never throws. */
async function bounded(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  body: (signal: AbortSignal) => Promise<{ outcome: ProbeOutcome; detail: string }>,
): Promise<ProbeResult> {
  const started = performance.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new ProbeTimeout(timeoutMs)), timeoutMs);
  const onAbort = () => ac.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await body(ac.signal);
    return { ...r, latencyMs: performance.now() - started };
  } catch (e) {
    return classify(e, started);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

export interface CommonProbeOptions extends ProbeSocketOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  transport?: ProbeTransport;
}

/** tcp: healthy when the three-way handshake completes; refused (RST) is a fail. */
export function tcpProbe(target: ProbeTarget, o: CommonProbeOptions): Promise<ProbeResult> {
  const t = o.transport ?? kernelTransport;
  return bounded(o.timeoutMs, o.signal, async (signal) => {
    const sock = await t.connect(target, o, signal);
    sock.destroy();
    return { outcome: 'ok', detail: 'connected' };
  });
}

export interface HttpProbeOptions extends CommonProbeOptions {
  path: string;
  expectStatus: readonly number[];
  /** Host header; default the target address (IPv6 in brackets), with ":port" unless 80. */
  host?: string;
}

function defaultHost(t: ProbeTarget): string {
  const a = net.isIPv6(t.address) ? `[${t.address}]` : t.address;
  return t.port === 80 ? a : `${a}:${t.port}`;
}

/** http: GET path over a fresh connection (Connection: close); healthy when the status is in expectStatus. */
export function httpProbe(target: ProbeTarget, o: HttpProbeOptions): Promise<ProbeResult> {
  const t = o.transport ?? kernelTransport;
  return bounded(o.timeoutMs, o.signal, async (signal) => {
    const sock = await t.connect(target, o, signal);
    return new Promise((resolve, reject) => {
      const req = http.request({
        method: 'GET',
        path: o.path,
        setHost: false,
        headers: {
          Host: o.host ?? defaultHost(target),
          'User-Agent': 'weir-health',
          Accept: '*/*',
          Connection: 'close',
        },
        createConnection: () => sock,
      });
      const onAbort = () => req.destroy(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (fn: () => void) => {
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      req.on('error', (e) => settle(() => reject(signal.aborted ? signal.reason : e)));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        // The status line is all we need: drop the body and the connection.
        res.resume();
        req.destroy();
        settle(() => resolve({ outcome: o.expectStatus.includes(status) ? 'ok' : 'fail', detail: `status ${status}` }));
      });
      req.end();
    });
  });
}

export interface UdpProbeOptions extends CommonProbeOptions {
  payload: Buffer;
  /** The reply must equal this; undefined accepts any reply. */
  expect?: Buffer;
}

/** udp: send payload, healthy when a (matching) reply comes back; ICMP port unreachable is a fail, silence a timeout. */
export function udpProbe(target: ProbeTarget, o: UdpProbeOptions): Promise<ProbeResult> {
  const t = o.transport ?? kernelTransport;
  return bounded(o.timeoutMs, o.signal, async (signal) => {
    const reply = await t.exchange(target, o.payload, o, signal);
    if (o.expect && !reply.equals(o.expect))
      return { outcome: 'fail', detail: `unexpected reply (${reply.length} bytes)` };
    return { outcome: 'ok', detail: `reply (${reply.length} bytes)` };
  });
}
