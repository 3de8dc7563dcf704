// The real data plane behind the control plane's DataPlaneHooks: starts instance.workers worker
// threads on the configured interfaces (AF_PACKET, one fanout group), publishes tables to them,
// installs the nftables ingress drops that keep the host's kernel off VIP traffic, sums their
// counters for `weir status`, and stops them on detach.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { ConnTable } from '../lb/conntrack.js';
import { hashSeed } from '../lb/flow-hash.js';
import type { WeirConfig } from '../config/schema.js';
import type { DataPlaneHooks, DataPlaneStatus, PassiveHealthSink, VipTables } from '../control/dataplane.js';
import { PASSIVE_OK } from '../lb/engine.js';
import { ingressRuleset, nftApply, nftRemove, nftTableName } from './nft.js';
import {
  COUNTER_STRIDE, CTL_GENERATION, CTL_STOP, CTL_WORDS, W_APPLIED_AT, W_FIRST_PACKET_AT, W_GENERATION, W_NOT_SUMMED, WORKER_COUNTER_NAMES,
  workerCounterBase, type WorkerInit,
} from './shared.js';
import { tablesMessage, type TableContext } from './tables.js';

export { SNAT_PORT_MIN, SNAT_PORT_MAX } from './tables.js';
export { nftTableName, ingressRuleset } from './nft.js';

export interface DataPlaneOptions {
  logger?: Logger;
  /** Skip the nftables table (tests that check the kernel's own behaviour). Default false. */
  noNft?: boolean;
  /** recv timeout in ms: how long a worker may take to notice stop (default 10). */
  recvTimeoutMs?: number;
  /** Packets per batch (default 64). */
  batchSlots?: number;
  /** AF_PACKET ring blocks (256 KiB each) per socket and worker (default 32 = 8 MiB: jumbo frames fill small rings fast). */
  ringBlocks?: number;
}

/** instance.workers as a number: auto = one per CPU this process may run on (os.availableParallelism()), at most 64. */
export function workerCount(w: number | 'auto'): number {
  return w === 'auto' ? Math.max(1, Math.min(64, availableParallelism())) : w;
}

/** Bytes of free room before each received frame: the outer IPv6 + GRE header (44) fits. */
const HEADROOM = 64;

function readSys(ifname: string, what: string): string {
  try {
    return readFileSync(`/sys/class/net/${ifname}/${what}`, 'utf8').trim();
  } catch {
    throw new Error(`interface ${ifname} (instance.interfaces) does not exist in this network namespace`);
  }
}

interface WorkerHandle {
  worker: Worker;
  port: MessagePort;
  alive: boolean;
  error?: string;
}

/**
 * Data-plane hooks over worker threads. attach() rejects with a clear Error when an interface is
 * missing, io is not afpacket, a socket cannot be opened (privileges) or nft fails; it then
 * leaves nothing running.
 */
export function createDataPlane(opts: DataPlaneOptions = {}): DataPlaneHooks {
  const log = opts.logger;
  let workers: WorkerHandle[] = [];
  let control: Int32Array | null = null;
  let counters: Float64Array | null = null;
  let ctx: TableContext | null = null;
  let config: WeirConfig | null = null;
  let table = '';
  let description = 'not attached';
  let nftInstalled = false;
  /** The ruleset last applied: a health-driven republish keeps the same VIPs, and nft (a blocking child process, ~100 ms) is skipped then. */
  let nftApplied = '';
  let lastError: string | null = null;
  let sink: PassiveHealthSink | null = null;

  // [vipId << 16 | backendId, PASSIVE_*] pairs from a worker's engine.
  const passive = (ev: Int32Array): void => {
    if (!sink) return;
    for (let i = 0; i + 1 < ev.length; i += 2) {
      const vipId = ev[i] >>> 16, backendId = ev[i] & 0xffff;
      if (ev[i + 1] === PASSIVE_OK) sink.success(vipId, backendId);
      else sink.failure(vipId, backendId);
    }
  };

  const stopWorkers = async (): Promise<void> => {
    if (control) Atomics.store(control, CTL_STOP, 1);
    await Promise.all(
      workers.map(async (w) => {
        if (!w.alive) return;
        const t = setTimeout(() => void w.worker.terminate(), 2000);
        await new Promise<void>((resolve) => w.worker.once('exit', () => resolve()));
        clearTimeout(t);
      }),
    );
    for (const w of workers) w.port.close();
    workers = [];
  };

  const hooks: DataPlaneHooks = {
    async attach(cfg: WeirConfig, conntrack: ConnTable): Promise<void> {
      config = cfg;
      const inst = cfg.instance;
      if (inst.io !== 'afpacket') throw new Error(`instance.io "${inst.io}" is not supported by the data plane yet; use afpacket`);
      if (inst.interfaces.length === 0) throw new Error('instance.interfaces is empty: nothing to attach to');
      const mtu = Math.min(...inst.interfaces.map((i) => Number(readSys(i, 'mtu'))));
      ctx = {
        address4: inst.addresses.find((a) => !a.includes(':')),
        address6: inst.addresses.find((a) => a.includes(':')),
        mtu,
        unknownTraffic: inst.unknown_traffic,
        fragments: inst.fragments,
      };
      table = nftTableName(inst.name);
      const n = workerCount(inst.workers);
      control = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
      const sab = new SharedArrayBuffer(n * COUNTER_STRIDE * 8);
      counters = new Float64Array(sab);
      // Fanout group ids are per network namespace; the pid keeps two instances in one apart.
      const fanoutGroup = (process.pid % 65534) + 1;
      const passiveFlags = new SharedArrayBuffer(65536);
      const slotSize = Math.max(2048, (mtu + 18 + HEADROOM + 63) & ~63);
      const ready: Promise<void>[] = [];
      for (let index = 0; index < n; index++) {
        const ch = new MessageChannel();
        const init: WorkerInit = {
          index, interfaces: [...inst.interfaces], fanoutGroup, conntrack: conntrack.shared(), counters: sab,
          stride: COUNTER_STRIDE, control: control.buffer as SharedArrayBuffer, port: ch.port2, mtu,
          slots: opts.batchSlots ?? 64, slotSize, headroom: HEADROOM, recvTimeoutMs: opts.recvTimeoutMs ?? 10,
          ringBlocks: opts.ringBlocks ?? 32, passiveFlags,
        };
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, transferList: [ch.port2], name: `weir-dp-${index}` });
        const h: WorkerHandle = { worker, port: ch.port1, alive: true };
        workers.push(h);
        ready.push(
          new Promise<void>((resolve, reject) => {
            worker.on('message', (m: { type: string; message?: string; generation?: number; events?: Int32Array }) => {
              if (m.type === 'passive') passive(m.events!);
              else if (m.type === 'ready') resolve();
              else if (m.type === 'error') {
                h.error = m.message;
                lastError = `worker ${index}: ${m.message}`;
                log?.error({ worker: index, err: m.message }, 'data-plane worker failed');
                reject(new Error(`data-plane worker ${index}: ${m.message}`));
              } else if (m.type === 'table-error') {
                lastError = `worker ${index} generation ${m.generation}: ${m.message}`;
                log?.error({ worker: index, generation: m.generation, err: m.message }, 'worker refused tables');
              }
            });
            worker.on('error', (e) => {
              h.error = e.message;
              lastError = `worker ${index}: ${e.message}`;
              log?.error({ worker: index, err: e }, 'data-plane worker crashed');
              reject(e);
            });
            worker.on('exit', () => {
              h.alive = false;
              reject(new Error(`data-plane worker ${index} exited during start`));
            });
          }),
        );
      }
      try {
        await Promise.all(ready);
      } catch (e) {
        await stopWorkers();
        throw e;
      }
      description = `afpacket: ${n} worker${n === 1 ? '' : 's'} on ${inst.interfaces.join(', ')} (mtu ${mtu})`;
      log?.info({ workers: n, interfaces: inst.interfaces, mtu, fanoutGroup, slotSize }, 'data plane attached');
    },

    publish(generation: number, vips: readonly VipTables[]): void {
      if (!control || !ctx || !config) return;
      let msg;
      try {
        msg = tablesMessage(generation, vips, ctx, hashSeed(config.cluster.hash_seed));
      } catch (e) {
        // The runtime has committed; keep the workers on their last good tables and say why.
        lastError = `generation ${generation} not published: ${(e as Error).message}`;
        log?.error({ generation, err: (e as Error).message }, 'tables not published; workers keep the previous generation');
        return;
      }
      // Drops first, so the kernel is off a new VIP before weir starts forwarding it.
      if (!opts.noNft) {
        const drops = { vips: [...new Set(vips.map((v) => v.address))], snat: vips.some((v) => v.mode === 'nat') ? [ctx.address4, ctx.address6].filter((a): a is string => !!a) : [] };
        const script = ingressRuleset(table, config.instance.interfaces, drops);
        if (!nftInstalled || script !== nftApplied) {
          try {
            nftApply(script);
            nftInstalled = true;
            nftApplied = script;
            log?.info({ table: `netdev ${table}`, interfaces: config.instance.interfaces, vipAddresses: drops.vips, snatAddresses: drops.snat }, 'nftables ingress drops installed');
          } catch (e) {
            lastError = `nftables: ${(e as Error).message}`;
            log?.error({ err: (e as Error).message }, 'nftables ingress table not installed: the kernel may answer VIP traffic');
          }
        }
      }
      for (const w of workers) w.port.postMessage(msg);
      Atomics.store(control, CTL_GENERATION, generation);
      log?.debug({ generation, vips: vips.length }, 'tables published');
    },

    setHealthSink(s: PassiveHealthSink): void {
      sink = s;
    },

    status(): DataPlaneStatus {
      if (!counters) return { attached: false, description: 'not attached' };
      const sum: Record<string, number> = {};
      WORKER_COUNTER_NAMES.forEach((name, i) => {
        if (W_NOT_SUMMED.includes(i)) return;
        let s = 0;
        for (let w = 0; w < workers.length; w++) s += counters![workerCounterBase(w) + i];
        sum[name] = s;
      });
      const alive = workers.filter((w) => w.alive).length;
      const gens = workers.map((_, w) => counters![workerCounterBase(w) + W_GENERATION]);
      const tx = sum.txNat + sum.txNatReply + sum.txGre + sum.txL2 + sum.txIcmpToBackend + sum.txIcmpToClient + sum.txFragNeeded;
      const dropped = Object.entries(sum).filter(([k]) => k.startsWith('drop')).reduce((s, [, v]) => s + v, 0);
      return {
        attached: workers.length > 0,
        description: `${description}; ${alive}/${workers.length} running, tables generation ${Math.min(...gens)}; rx ${sum.rx} tx ${tx} drop ${dropped}${lastError ? `; last error: ${lastError}` : ''}`,
        counters: sum,
        workers: workers.length,
        running: alive,
        generations: gens,
        /** Packets each worker received: shows how the fanout hash spreads flows. */
        workerRx: workers.map((_, w) => counters![workerCounterBase(w)]),
        /** Per worker: when it swapped to its generation and forwarded the first batch with it (epoch ms; 0: none yet). */
        appliedAt: workers.map((_, w) => counters![workerCounterBase(w) + W_APPLIED_AT]),
        firstPacketAt: workers.map((_, w) => counters![workerCounterBase(w) + W_FIRST_PACKET_AT]),
        ...(lastError ? { lastError } : {}),
      } as DataPlaneStatus;
    },

    async detach(): Promise<void> {
      const had = workers.length;
      await stopWorkers();
      if (nftInstalled) {
        try {
          nftRemove(table);
          log?.info({ table: `netdev ${table}` }, 'nftables ingress drops removed');
        } catch (e) {
          log?.error({ err: (e as Error).message }, 'could not remove the nftables table');
        }
        nftInstalled = false;
        nftApplied = '';
      }
      if (had) log?.info({ workers: had }, 'data plane detached');
      counters = null;
      control = null;
      description = 'not attached';
    },
  };
  return hooks;
}
