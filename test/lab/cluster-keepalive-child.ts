// Long-lived HTTP/1.1 keep-alive connections for the cluster tests, run in the client namespace:
// N TCP connections to one VIP from fixed source ports, a GET on each every intervalMs, the
// backend name of every answer and every error/reset recorded per connection. stdin commands:
// "report" prints a JSON report line; "stop" reports, closes everything and exits. Bounded by maxMs.
import net from 'node:net';
import { createInterface } from 'node:readline';

interface Opts {
  vip: string;
  port: number;
  n: number;
  firstPort: number;
  intervalMs: number;
  maxMs: number;
}

interface Conn {
  localPort: number;
  socket: net.Socket;
  backends: string[];
  /** Timestamp (ms) of each answer, parallel to backends. */
  at: number[];
  errors: string[];
  closed: boolean;
  connected: boolean;
  inflight: boolean;
  buf: string;
}

const o = JSON.parse(process.argv[2]) as Opts;
const conns: Conn[] = [];
let stopping = false;

function send(c: Conn): void {
  if (stopping || c.closed || c.inflight) return;
  c.inflight = true;
  c.socket.write(`GET / HTTP/1.1\r\nHost: ${o.vip}\r\nConnection: keep-alive\r\n\r\n`);
}

/** Consumes complete responses (headers + content-length body) from the buffer. */
function parse(c: Conn): void {
  for (;;) {
    const end = c.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = c.buf.slice(0, end);
    const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (c.buf.length < end + 4 + len) return;
    const backend = /x-backend:\s*(\S+)/i.exec(head)?.[1] ?? '?';
    c.buf = c.buf.slice(end + 4 + len);
    c.backends.push(backend);
    c.at.push(Date.now());
    c.inflight = false;
    setTimeout(() => send(c), o.intervalMs);
  }
}

for (let i = 0; i < o.n; i++) {
  const socket = net.connect({ host: o.vip, port: o.port, localPort: o.firstPort + i });
  const c: Conn = {
    localPort: o.firstPort + i,
    socket,
    backends: [],
    at: [],
    errors: [],
    closed: false,
    connected: false,
    inflight: false,
    buf: '',
  };
  conns.push(c);
  socket.setEncoding('utf8');
  socket.setNoDelay(true);
  socket.on('connect', () => {
    c.connected = true;
    send(c);
  });
  socket.on('data', (d: string) => {
    c.buf += d;
    parse(c);
  });
  socket.on('error', (e: NodeJS.ErrnoException) => c.errors.push(`${Date.now()} ${e.code ?? e.message}`));
  socket.on('close', () => {
    if (!stopping) c.errors.push(`${Date.now()} closed`);
    c.closed = true;
  });
}

function report(): string {
  return JSON.stringify({
    at: Date.now(),
    conns: conns.map((c) => ({
      localPort: c.localPort,
      connected: c.connected,
      closed: c.closed,
      answers: c.backends.length,
      backends: c.backends,
      last: c.at[c.at.length - 1] ?? 0,
      errors: c.errors,
    })),
  });
}

function stop(): void {
  console.log(report());
  stopping = true;
  for (const c of conns) c.socket.destroy();
  process.exit(0);
}

createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'report') console.log(report());
  if (l === 'stop') stop();
});
setTimeout(stop, o.maxMs).unref();
