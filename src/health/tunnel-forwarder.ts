// The through-tunnel probe forwarder, on a thread of its own: reads probe packets from the TUN,
// GRE-encapsulates each (RFC 2784) to the backend its source address probes and sends it with a
// raw socket. Its own event loop keeps probe packets moving while the control thread is busy
// (table rebuilds at start, a metrics scrape); on the control thread they waited past the
// probes' timeout. Started by TunnelProbePath (tunnel-transport.ts).
import { isMainThread, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { META_LEN, META_OFF, PacketBatch } from '../io/batch.js';
import { RawIpSender, TunPort } from '../io/ports.js';
import { GreTunnel, encapGreInPlace } from '../packet/encap.js';
import { formatIp, parseIp } from '../packet/ip-text.js';

/** Int32 words of ForwarderInit.sync: FWD_STATE is 0 while opening, then FWD_OPEN or FWD_FAILED. */
export const FWD_STATE = 0;
export const FWD_OPEN = 1;
export const FWD_FAILED = 2;
/** Float64 slots of ForwarderInit.counters. */
export const FWD_ENCAPSULATED = 0;
export const FWD_UNROUTED = 1;
export const FWD_SEND_ERRORS = 2;
export const FWD_COUNTERS = 3;

export interface ForwarderInit {
  tun: string;
  /** Routes and stop arrive here; an open error is posted back on it. */
  port: MessagePort;
  sync: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

export type ForwarderMessage = { type: 'route'; source: string; outer: string; backend: string } | { type: 'stop' };

function main(init: ForwarderInit): void {
  const sync = new Int32Array(init.sync);
  const counters = new Float64Array(init.counters);
  const port = init.port;
  let tun: TunPort;
  try {
    tun = new TunPort(init.tun);
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message });
    Atomics.store(sync, FWD_STATE, FWD_FAILED);
    Atomics.notify(sync, FWD_STATE);
    port.close();
    return;
  }
  const routes = new Map<string, GreTunnel>();
  const senders = new Map<4 | 6, RawIpSender>();
  const batch = new PacketBatch({ slots: 1, slotSize: 2048, headroom: 64 });
  let open = true;

  const handle = (m: ForwarderMessage): void => {
    if (m.type === 'route') {
      const src = parseIp(m.source)!;
      routes.set(formatIp(src, 0, src.length), new GreTunnel(parseIp(m.outer)!, parseIp(m.backend)!)); // keyed as drain() formats
    } else if (open) {
      open = false;
      tun.onReadable(null);
      tun.close();
      for (const s of senders.values()) s.close();
      port.close();
    }
  };
  // A route posted just before its probe's first packet may still be queued: take it now.
  const pending = (): void => {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) handle(m.message as ForwarderMessage);
  };
  const sender = (fam: 4 | 6): RawIpSender => {
    let s = senders.get(fam);
    if (!s) {
      s = new RawIpSender(fam);
      senders.set(fam, s);
    }
    return s;
  };
  // Probe packets only: a few per backend and interval.
  const drain = (): void => {
    const b = batch;
    for (let k = 0; k < 64 && open; k++) {
      if (tun.recv(b, 0) === 0) return;
      const off = b.meta[META_OFF];
      const len = b.meta[META_LEN];
      const v = b.data[off] >> 4;
      const src = v === 4 ? formatIp(b.data, off + 12, 4) : v === 6 ? formatIp(b.data, off + 8, 16) : '';
      let gre = routes.get(src);
      if (!gre) {
        pending();
        gre = routes.get(src);
      }
      if (!gre || !open) {
        counters[FWD_UNROUTED]++;
        continue;
      }
      const start = encapGreInPlace(b.data, off, len, gre);
      if (start < 0) {
        counters[FWD_SEND_ERRORS]++;
        continue;
      }
      b.meta[META_OFF] = start;
      b.meta[META_LEN] = len + gre.hdrLen;
      try {
        if (sender(gre.outerVersion).send(b, 1) !== 1) counters[FWD_SEND_ERRORS]++;
        else counters[FWD_ENCAPSULATED]++;
      } catch {
        counters[FWD_SEND_ERRORS]++; // no raw socket (privileges): the probes time out and say so
      }
    }
  };
  port.on('message', (m: ForwarderMessage) => handle(m));
  tun.onReadable(drain);
  Atomics.store(sync, FWD_STATE, FWD_OPEN);
  Atomics.notify(sync, FWD_STATE);
}

// The control thread imports the constants above; only the worker runs the loop.
if (!isMainThread) main(workerData as ForwarderInit);
