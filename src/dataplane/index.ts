// The real data plane behind the control plane's DataPlaneHooks: starts instance.workers worker
// threads on the configured interfaces (AF_PACKET, one fanout group) or on the queues of one
// TUN device (io: tun), publishes tables to them, installs the nftables ingress drops that keep
// the host's kernel off VIP traffic (afpacket) or the routes that send VIP and SNAT traffic into
// the TUN (tun), sums their counters for `weir status`, and stops them on detach.
import { existsSync } from 'node:fs';
import { availableParallelism, networkInterfaces } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { ctNow, type ConnTable } from '../lb/conntrack.js';
import { RateLimiter, type RateLimitSettings } from '../lb/rate-limit.js';
import type { DataPlaneHooks, DataPlaneSettings, DataPlaneStatus, PassiveHealthSink, VipTables } from './contract.js';
import { HOLD_POOL_BYTES, PASSIVE_OK } from '../lb/engine.js';
import { ingressRuleset, nftApply, nftRemove, nftTableName } from './nft.js';
import { runHost } from '../util/host.js';
import {
  COUNTER_STRIDE,
  CTL_PUBLISHED,
  CTL_STOP,
  CTL_WORDS,
  type XskAssignment,
  W_APPLIED_AT,
  W_FIRST_PACKET_AT,
  W_GENERATION,
  W_NOT_SUMMED,
  WORKER_COUNTER_NAMES,
  workerCounterBase,
  type WorkerInit,
} from './shared.js';
import { compileTables, engineOptions, snatPool, vipSpecOf, type TableContext, type TablesMessage } from './tables.js';
import { SlotStore } from '../lb/slot-store.js';
import { SlotPublisher, type SlotPlan } from './slot-publisher.js';
import { TRAFFIC_WORDS, TrafficSlots, type VipTraffic } from './traffic.js';
import { linkOf, readLinks, readProc, readSys, rxQueues, type Link } from './links.js';
import { nextHopOf, readHostView, watchHost, type HostView } from './next-hops.js';
import { XdpClassifier } from '../io/ports.js';
import { aggregationOff, restoreAggregation, type AggregationChange } from '../io/offloads.js';
import { parseMac } from '../packet/index.js';

export { SNAT_PORT_MIN, SNAT_PORT_MAX } from './tables.js';
export { nftTableName, ingressRuleset } from './nft.js';

export interface DataPlaneOptions {
  logger?: Logger;
  /** Skip the nftables table (tests that check the kernel's own behaviour). Default false. */
  noNft?: boolean;
  /** Longest sleep of an idle worker in poll() (ms): how long it may take to notice stop (default 10). */
  recvTimeoutMs?: number;
  /** AF_PACKET ring version (default 2; 3 only to compare, see docs/io.md). */
  ringVersion?: 2 | 3;
  /** Busy-poll window in µs (default instance.busy_poll_us). */
  spinUs?: number;
  /** Packets per batch (default 64). */
  batchSlots?: number;
  /** AF_PACKET ring blocks (256 KiB each) per socket and worker (default ringBlocksFor(workers)). */
  ringBlocks?: number;
}

/** instance.workers as a number: auto = one per CPU this process may run on (os.availableParallelism()), at most 64. */
export function workerCount(w: number | 'auto'): number {
  return w === 'auto' ? Math.max(1, Math.min(64, availableParallelism())) : w;
}

/**
 * AF_PACKET ring blocks (256 KiB each) per socket: 32 (8 MiB; jumbo frames fill small rings
 * fast) with one or two workers, 16 (4 MiB) with more. The fanout hash splits an interface's
 * flows across the workers, so each ring sees about 1/n of the traffic while the rings' pages
 * (all resident) grow with n; 4 MiB still holds 2,600 frames of MTU 1500 or 450 of MTU 9000
 * for one elephant flow on one worker.
 */
export function ringBlocksFor(workers: number): number {
  return workers <= 2 ? 32 : 16;
}

/**
 * A data-plane worker's young generation (MB; V8's default is 16 MB per semi-space, all of it
 * resident once used): the batch loop allocates nothing per packet, only a table compile does,
 * so a small one costs a few more scavenges there and saves ~10 MB per worker.
 */
const WORKER_YOUNG_GENERATION_MB = 2;

/** Bytes of free room before each received frame: the outer IPv6 + GRE header (44) fits. */
const HEADROOM = 64;

/**
 * io: afxdp: above this MTU a frame no longer fits one 4 KiB page, so the XDP program must take
 * multi-buffer frames (BPF_F_XDP_HAS_FRAGS) and the sockets chained descriptors (XDP_USE_SG);
 * veth refuses a plain XDP program above about 3500.
 */
const XDP_PAGE_MTU = 3000;

/** How often the host's routes and neighbours are read again for next-hop output. */
/** Two lists of texts are equal (the cached texts are mostly the same objects, so this is cheap). */
function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Next hops are re-read on the kernel's change notifications, and this often anyway (watchHost). */
const NEXT_HOP_RESYNC_MS = 60_000;

/** TUN MTU when io: tun names no interfaces. */
const TUN_DEFAULT_MTU = 1500;

/** Runs `ip -batch -`; throws with ip's message. */
function ipBatch(lines: readonly string[]): void {
  runHost(['ip', '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** `ip -batch` lines that take the routes into the TUN from `have` to `want` (host routes). */
export function tunRouteScript(dev: string, have: readonly string[], want: readonly string[]): string[] {
  const host = (a: string): string => `${a}/${a.includes(':') ? 128 : 32}`;
  return [
    ...have.filter((a) => !want.includes(a)).map((a) => `route del ${host(a)} dev ${dev}`),
    ...want.filter((a) => !have.includes(a)).map((a) => `route replace ${host(a)} dev ${dev}`),
  ];
}

/**
 * io: tun needs a TUN name nobody uses, the kernel to forward (VIP packets are routed into the
 * TUN) and SNAT addresses (`snat`, those of the tables) that are not this host's: a local
 * address would take the backends' replies itself.
 */
function tunPreflight(s: DataPlaneSettings, snat: readonly string[]): void {
  // Opening a queue of an existing multi-queue TUN joins it: never share another owner's device.
  if (existsSync(`/sys/class/net/${s.tunName}`)) {
    throw new Error(
      `instance.tun_name ${s.tunName} already exists (another weir instance?); give each instance its own`,
    );
  }
  const fams = new Set(s.vipFamilies);
  if (fams.has(4) && readProc('/proc/sys/net/ipv4/ip_forward') !== '1') {
    throw new Error('instance.io tun needs net.ipv4.ip_forward=1: the kernel forwards IPv4 VIP traffic into the TUN');
  }
  if (fams.has(6) && readProc('/proc/sys/net/ipv6/conf/all/forwarding') !== '1') {
    throw new Error(
      'instance.io tun needs net.ipv6.conf.all.forwarding=1: the kernel forwards IPv6 VIP traffic into the TUN',
    );
  }
  const local = new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  for (const a of snat) {
    if (local.has(a)) {
      throw new Error(
        `instance.io tun: SNAT address ${a} is assigned to this host, so the kernel would take the backends' replies; use addresses routed to this host but not assigned to it`,
      );
    }
  }
}

/** The SNAT addresses nat VIPs use (the pool, both families), none without a nat VIP. */
function snatAddresses(ctx: TableContext, vips: readonly { mode: string }[]): string[] {
  if (!vips.some((v) => v.mode === 'nat')) return [];
  const p = snatPool(ctx);
  return [...p.v4, ...p.v6];
}

interface WorkerHandle {
  worker: Worker;
  port: MessagePort;
  alive: boolean;
  error?: string;
}

/**
 * Data-plane hooks over worker threads. attach() rejects with a clear Error when an interface is
 * missing, a socket or the TUN cannot be opened (privileges), io: tun lacks forwarding or has a
 * local SNAT address, or nft fails; it then leaves nothing running.
 */
export function createDataPlane(opts: DataPlaneOptions = {}): DataPlaneHooks {
  const log = opts.logger;
  let workers: WorkerHandle[] = [];
  let control: Int32Array | null = null;
  let counters: Float64Array | null = null;
  /** Per-VIP and per-backend counters: the workers' regions and the name → slot map. */
  let slots: TrafficSlots | null = null;
  let conntrackRef: ConnTable | null = null;
  const byVip = new Uint32Array(65536),
    byBackend = new Uint32Array(65536);
  /** The oldest table generation a worker runs. */
  const minGeneration = (): number =>
    counters === null || workers.length === 0
      ? 0
      : Math.min(...workers.map((_, w) => counters![workerCounterBase(w) + W_GENERATION]));
  let ctx: TableContext | null = null;
  let config: DataPlaneSettings | null = null;
  let table = '';
  let description = 'not attached';
  let nftInstalled = false;
  /** The ruleset last applied: a health-driven republish keeps the same VIPs, and nft (a blocking child process, ~100 ms) is skipped then. */
  let nftApplied = '';
  let lastError: string | null = null;
  let sink: PassiveHealthSink | null = null;
  /** rate_limits: the buckets every worker shares (made at attach, reconfigured on reload). */
  let limiter: RateLimiter | null = null;
  /** io: tun: the addresses routed into the TUN. */
  let tunRoutes: string[] = [];

  // [vipId << 16 | backendId, PASSIVE_*] pairs from a worker's engine.
  const passive = (ev: Int32Array): void => {
    if (!sink) return;
    for (let i = 0; i + 1 < ev.length; i += 2) {
      const vipId = ev[i] >>> 16,
        backendId = ev[i] & 0xffff;
      if (ev[i + 1] === PASSIVE_OK) sink.success(vipId, backendId);
      else sink.failure(vipId, backendId);
    }
  };

  /** The last tables published (republished when a backend's next hop changes). */
  let published: { generation: number; vips: readonly VipTables[] } | null = null;
  let pubSeq = 0;
  /** The shared Maglev slot tables (made at attach) and what was last posted to the workers. */
  let publisher: SlotPublisher | null = null;
  /** Made up front so the runtime's build pool can write into it before attach; a new one after a detach. */
  let store = SlotStore.create();
  /** What the workers' VipTables were compiled from: options, each VIP's spec text, descriptors. */
  let postedKey: string[] = [];
  let reclaimTimer: NodeJS.Timeout | null = null;
  /** Per VipTables object: its engine spec and that as text, valid while specCacheEpoch holds. */
  let specCache = new WeakMap<VipTables, { spec: ReturnType<typeof vipSpecOf>; key: string }>();
  let specCacheEpoch = '';
  /** The traffic-counter overflow last logged. */
  let overflowSaid = '';
  /** Workers that report epochs (alive ones). */
  const liveReaders = (): number[] => workers.flatMap((w, i) => (w.alive ? [i] : []));
  /** Next-hop output (instance.l2_output): the host's routes and neighbours, re-read when the kernel says they changed. */
  let hostView: HostView | null = null;
  /** The view as text, and a number that moves when it changes (keys hopsCache). */
  let hostViewText = '';
  let hostViewSeq = 0;
  let stopHostWatch: (() => void) | null = null;
  /** The next hops the workers have, as text per VIP, to see when a refresh changes them; and a version of it. */
  let hopsSent: string[] = [];
  let hopsVersion = 0;
  /** Per VipTables object, its part of hopsKey while the view and the links stay as they were. */
  let hopsCache = new WeakMap<VipTables, string>();
  let hopsCacheEpoch = '';

  const linkFor = (
    links: readonly Link[],
    address: string,
    mode: VipTables['mode'],
  ): { ifindex: number; mac: string; nextHop?: string } | undefined => {
    if (mode === 'dsr-l2') {
      const l = linkOf(links, address);
      return l && { ifindex: l.ifindex, mac: l.mac };
    }
    return hostView ? nextHopOf(hostView, links, address) : undefined;
  };
  // Each publication compares next hops; at thousands of VIPs recomputing every backend's took
  // ~40 ms, so a VIP's part is kept while its VipTables, the host view and the links are the same.
  const hopsKey = (links: readonly Link[], vips: readonly VipTables[]): string[] => {
    const epoch = `${hostViewSeq}\n${JSON.stringify(links)}`;
    if (epoch !== hopsCacheEpoch) {
      hopsCache = new WeakMap();
      hopsCacheEpoch = epoch;
    }
    const parts: string[] = [];
    for (const v of vips) {
      if (v.mode === 'dsr-l2') continue;
      let k = hopsCache.get(v);
      if (k === undefined) {
        k = v.backends
          .map((b) => `${b.address}>${JSON.stringify(linkFor(links, b.address, v.mode) ?? null)}`)
          .join(' ');
        hopsCache.set(v, k);
      }
      parts.push(k);
    }
    return parts;
  };

  // Reads the host's routes and neighbours; republishes when a backend's next hop changed
  // (a neighbour the kernel resolved since, a route that moved). Never throws.
  const refreshHops = async (): Promise<void> => {
    try {
      const view = await readHostView();
      const text = JSON.stringify([view.routes, [...view.neighbours]]);
      if (text !== hostViewText || hostView === null) {
        hostView = view;
        hostViewText = text;
        hostViewSeq++;
      }
    } catch (e) {
      lastError = `next hops: ${(e as Error).message}`;
      return;
    }
    if (!published || !config || !control) return;
    const links = readLinks(config.interfaces);
    if (!sameStrings(hopsKey(links, published.vips), hopsSent)) {
      log?.info({ generation: published.generation }, 'backend next hops changed: tables republished');
      hooks.publish(published.generation, published.vips);
    }
  };

  /** io: afxdp: the program on each interface (closing one detaches it). */
  let classifiers: XdpClassifier[] = [];
  const closeClassifiers = (): void => {
    for (const c of classifiers) c.close();
    classifiers = [];
  };

  /** gro: off — the interfaces whose GRO/LRO weir turned off, and their state before. */
  let aggregation: AggregationChange[] = [];
  const restoreOffloads = (): void => {
    if (aggregation.length === 0) return;
    const failed = restoreAggregation(aggregation);
    if (failed.length) log?.warn({ failed }, 'could not restore GRO/LRO on some interfaces');
    else log?.info({ interfaces: aggregation.map((c) => c.ifname) }, 'GRO/LRO restored');
    aggregation = [];
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
    get slotStore(): SlotStore {
      return store;
    },

    async attach(settings: DataPlaneSettings, conntrack: ConnTable): Promise<void> {
      config = settings;
      const inst = settings;
      const tun = inst.io === 'tun';
      if (!tun && inst.interfaces.length === 0) throw new Error('instance.interfaces is empty: nothing to attach to');
      // With a TUN the interfaces (optional) only give the MTU: packets leave by the kernel's routes.
      const mtu =
        inst.interfaces.length > 0
          ? Math.min(...inst.interfaces.map((i) => Number(readSys(i, 'mtu'))))
          : TUN_DEFAULT_MTU;
      ctx = {
        address4: inst.addresses.find((a) => !a.includes(':')),
        address6: inst.addresses.find((a) => a.includes(':')),
        mtu,
        unknownTraffic: inst.unknownTraffic,
        fragments: inst.fragments,
        snat: { addresses: inst.snatAddresses, portMin: inst.snatPortMin, portMax: inst.snatPortMax },
        // the threshold is the instance's; each worker's engine sees about 1/n of new flows
        synProxyRate: Math.max(1, Math.ceil(inst.synProxyThreshold / workerCount(inst.workers))),
        cookieKey: inst.cookieKey,
      };
      if (tun) tunPreflight(settings, settings.natVips ? snatAddresses(ctx, [{ mode: 'nat' }]) : []);
      table = nftTableName(inst.name);
      const n = workerCount(inst.workers);
      // io: afxdp: the program on each interface before the workers open their sockets. Queue q
      // of an interface is served by worker q mod n; a worker with no queue there sends its
      // frames for that interface through AF_PACKET.
      let xsk: XskAssignment[] | undefined;
      if (inst.io === 'afxdp') {
        try {
          xsk = inst.interfaces.map((ifname) => {
            const queues = rxQueues(ifname);
            const c = new XdpClassifier(ifname, {
              queues,
              snatPortMin: inst.snatPortMin,
              snatPortMax: inst.snatPortMax,
              mac: parseMac(readSys(ifname, 'address'))!,
              native: inst.xdpMode === 'native',
              frags: mtu > XDP_PAGE_MTU,
            });
            classifiers.push(c);
            return {
              ifname,
              mapFd: c.xskMapFd,
              queues: Array.from({ length: queues }, (_, q) => q),
              sg: mtu > XDP_PAGE_MTU,
            };
          });
        } catch (e) {
          closeClassifiers();
          throw e;
        }
      }
      // GRO/LRO off before a socket opens: no super-frame reaches a ring or an XDP chunk.
      if (!tun && inst.gro === 'off') {
        try {
          aggregation = aggregationOff(inst.interfaces);
        } catch (e) {
          closeClassifiers();
          throw e;
        }
        if (aggregation.length)
          log?.info(
            { changed: aggregation.map((c) => ({ interface: c.ifname, gro: c.was.gro, lro: c.was.lro })) },
            'GRO/LRO turned off while weir runs (restored at stop; instance.gro: keep leaves them)',
          );
      }
      const queuesOf = (w: number): XskAssignment[] | undefined =>
        xsk?.map((a) => ({ ...a, queues: a.queues.filter((q) => q % n === w) }));
      control = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
      const sab = new SharedArrayBuffer(n * COUNTER_STRIDE * 8);
      counters = new Float64Array(sab);
      const trafficSab = new SharedArrayBuffer(n * TRAFFIC_WORDS * 8);
      slots = new TrafficSlots(
        Array.from({ length: n }, (_, w) => new Float64Array(trafficSab, w * TRAFFIC_WORDS * 8, TRAFFIC_WORDS)),
      );
      conntrackRef = conntrack;
      publisher = new SlotPublisher(store);
      postedKey = [];
      specCacheEpoch = '';
      const passiveFlags = new SharedArrayBuffer(65536);
      const rl = RateLimiter.create(inst.rateLimits);
      limiter = rl;
      const holdPool = new SharedArrayBuffer(HOLD_POOL_BYTES);
      const slotSize = Math.max(2048, (mtu + 18 + HEADROOM + 63) & ~63);
      const ringVersion = opts.ringVersion ?? 2;
      const spinUs = opts.spinUs ?? inst.busyPollUs;
      // A V2 ring frame holds the largest frame (Ethernet + one VLAN tag) after 66 bytes of header.
      const frameSize = (mtu + 18 + 66 + 15) & ~15;
      const spawn = (index: number, fanoutGroups: number[]): Promise<number[]> => {
        const ch = new MessageChannel();
        const init: WorkerInit = {
          index,
          io: inst.io,
          interfaces: [...inst.interfaces],
          ...(tun ? { tun: inst.tunName } : {}),
          ...(xsk ? { xsk: queuesOf(index) } : {}),
          fanoutGroups,
          conntrack: conntrack.shared(),
          slotStore: publisher!.store.shared(),
          counters: sab,
          traffic: trafficSab,
          stride: COUNTER_STRIDE,
          control: control!.buffer as SharedArrayBuffer,
          port: ch.port2,
          mtu,
          slots: opts.batchSlots ?? 64,
          slotSize,
          headroom: HEADROOM,
          recvTimeoutMs: opts.recvTimeoutMs ?? 10,
          ringBlocks: opts.ringBlocks ?? ringBlocksFor(n),
          ringVersion,
          frameSize,
          spinUs,
          passiveFlags,
          rateLimiter: rl.shared(),
          holdPool,
          scheduling: inst.workerScheduling,
        };
        const worker = new Worker(new URL('./worker.js', import.meta.url), {
          workerData: init,
          transferList: [ch.port2],
          name: `weir-dp-${index}`,
          resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
        });
        const h: WorkerHandle = { worker, port: ch.port1, alive: true };
        workers.push(h);
        return new Promise<number[]>((resolve, reject) => {
          worker.on(
            'message',
            (m: {
              type: string;
              message?: string;
              generation?: number;
              events?: Int32Array;
              fanoutGroups?: number[];
            }) => {
              if (m.type === 'passive') passive(m.events!);
              else if (m.type === 'ready') resolve(m.fanoutGroups ?? []);
              else if (m.type === 'error') {
                h.error = m.message;
                lastError = `worker ${index}: ${m.message}`;
                log?.error({ worker: index, err: m.message }, 'data-plane worker failed');
                reject(new Error(`data-plane worker ${index}: ${m.message}`));
              } else if (m.type === 'table-error') {
                lastError = `worker ${index} generation ${m.generation}: ${m.message}`;
                log?.error({ worker: index, generation: m.generation, err: m.message }, 'worker refused tables');
              }
            },
          );
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
        });
      };
      // Worker 0 opens one fanout group per interface (the kernel picks ids unique in this
      // namespace, so two instances never collide); the others join those groups.
      let fanoutGroups: number[] = [];
      try {
        fanoutGroups = await spawn(
          0,
          inst.interfaces.map(() => 0),
        );
        await Promise.all(Array.from({ length: n - 1 }, (_, i) => spawn(i + 1, fanoutGroups)));
      } catch (e) {
        await stopWorkers();
        closeClassifiers();
        restoreOffloads();
        throw e;
      }
      if (tun) {
        try {
          ipBatch([`link set dev ${inst.tunName} mtu ${mtu} up`]);
        } catch (e) {
          await stopWorkers();
          throw e;
        }
      }
      // Old slot blocks go back to the arena once every worker moved past them (also between publishes).
      reclaimTimer = setInterval(() => publisher?.reclaim(liveReaders()), 1000);
      reclaimTimer.unref();
      if (!tun && inst.l2Output) {
        await refreshHops();
        stopHostWatch = watchHost({
          reread: refreshHops,
          view: () => hostView,
          onError: (message) => log?.warn({ message }, 'next-hop monitor'),
          resyncMs: NEXT_HOP_RESYNC_MS,
        });
      }
      const ws = `${n} worker${n === 1 ? '' : 's'}`;
      description = tun
        ? `tun: ${ws} on ${inst.tunName} (${n} queue${n === 1 ? '' : 's'}, mtu ${mtu})`
        : inst.io === 'afxdp'
          ? `afxdp: ${ws} on ${xsk!.map((a) => `${a.ifname} (${a.queues.length} queue${a.queues.length === 1 ? '' : 's'})`).join(', ')} (xdp ${classifiers[0].mode}, mtu ${mtu})`
          : `afpacket: ${ws} on ${inst.interfaces.join(', ')} (mtu ${mtu})`;
      log?.info(
        {
          io: inst.io,
          workers: n,
          interfaces: inst.interfaces,
          ...(tun ? { tun: inst.tunName } : { fanoutGroups, ringVersion, frameSize }),
          mtu,
          slotSize,
          spinUs,
        },
        'data plane attached',
      );
    },

    publish(generation: number, vips: readonly VipTables[]): void {
      if (!control || !ctx || !config) return;
      published = { generation, vips };
      let msg: TablesMessage;
      let plan: SlotPlan;
      const pub = publisher!;
      try {
        const links = config.io === 'tun' ? [] : readLinks(config.interfaces);
        ctx = { ...ctx, link: (a, mode) => linkFor(links, a, mode) };
        // dsr-l2 frames leave on the interface their backend is on-link at (two-armed hosts).
        const offLink = vips
          .filter((v) => v.mode === 'dsr-l2')
          .flatMap((v) => v.backends)
          .filter((b) => !linkOf(links, b.address))
          .map((b) => b.address);
        if (links.length > 1 && offLink.length > 0) {
          log?.warn(
            { backends: [...new Set(offLink)], interfaces: config.interfaces },
            "dsr-l2 backends on no interface's subnet: their frames leave where they came in",
          );
        }
        const hops = hopsKey(links, vips);
        if (!sameStrings(hops, hopsSent)) {
          hopsSent = hops;
          hopsVersion++;
        }
        slots?.release(minGeneration());
        const lookup = slots?.assign(generation, vips);
        // Said once per set of uncounted names, not at every publication of a config that big.
        const overflow = slots ? slots.overflow.join('\n') : '';
        if (overflow !== overflowSaid && slots && slots.overflow.length > 0)
          log?.warn(
            { uncounted: slots.overflow.slice(0, 20), total: slots.overflow.length },
            'no free traffic counter slot: these VIPs and backends are not counted per VIP/backend',
          );
        overflowSaid = overflow;
        pub.reclaim(liveReaders());
        // A VIP's spec depends on its VipTables (the same object while unchanged), its counter
        // slots and the next hops: kept across publishes while neither of the last two moved.
        const specEpoch = `${slots?.assigned ?? 0}\n${hopsVersion}\n${JSON.stringify(links)}`;
        if (specEpoch !== specCacheEpoch) {
          specCache = new WeakMap();
          specCacheEpoch = specEpoch;
        }
        const specs: ReturnType<typeof vipSpecOf>[] = [];
        const keys: string[] = [];
        for (const v of vips) {
          let c = specCache.get(v);
          if (!c) {
            const spec = vipSpecOf(v, ctx, lookup);
            specCache.set(v, (c = { spec, key: JSON.stringify(spec) }));
          }
          specs.push(c.spec);
          keys.push(c.key);
        }
        const opts = engineOptions(vips, ctx, vips[0]?.seed ?? 0);
        plan = pub.plan(
          vips.map((v) => ({ name: v.name, table: v.table })),
          keys,
        );
        const seq = ++pubSeq;
        // Descriptors are part of the key: a VIP that got a fresh one needs a new VipTable.
        // Kept as a list of the cached texts, not joined: a joined key is megabytes at thousands of
        // VIPs, a fresh large-object-space string per publication that only a full GC takes back.
        const fullKey = [JSON.stringify(opts), plan.descs.join(','), ...keys];
        if (sameStrings(fullKey, postedKey)) {
          // Only slot tables changed, in place: the workers keep their VipTable and take the generation.
          msg = { type: 'tables', seq, generation, vips: null, opts };
        } else {
          msg = {
            type: 'tables',
            seq,
            generation,
            opts,
            vips: vips.map((v, i) => ({ spec: specs[i], maglev: { ids: v.table.backendIds, desc: plan.descs[i] } })),
          };
          try {
            compileTables(
              msg,
              vips.map((v) => v.table),
            );
          } catch (e) {
            pub.abandon(plan);
            throw e;
          }
          postedKey = fullKey;
        }
      } catch (e) {
        // The runtime has committed; keep the workers on their last good tables and say why.
        lastError = `generation ${generation} not published: ${(e as Error).message}`;
        log?.error(
          { generation, err: (e as Error).message },
          'tables not published; workers keep the previous generation',
        );
        return;
      }
      const snat = snatAddresses(ctx, vips);
      if (config.io === 'tun') {
        // io: tun: the kernel forwards VIP and SNAT traffic into the TUN by these routes.
        const tunName = config.tunName;
        const want = [...new Set([...vips.map((v) => v.address), ...snat])];
        const script = tunRouteScript(tunName, tunRoutes, want);
        if (script.length > 0) {
          try {
            ipBatch(script);
            tunRoutes = want;
            log?.info({ tun: tunName, routes: want }, 'routes into the TUN installed');
          } catch (e) {
            lastError = `tun routes: ${(e as Error).message}`;
            log?.error(
              { err: (e as Error).message },
              'routes into the TUN not installed: VIP traffic may not reach weir',
            );
          }
        }
      } else if (config.io === 'afxdp') {
        // The program sends these to weir's sockets; the kernel never sees them (no nftables guard).
        const vipAddrs = [...new Set(vips.map((v) => v.address))];
        try {
          for (const c of classifiers) c.setAddresses(vipAddrs, snat);
        } catch (e) {
          lastError = `xdp maps: ${(e as Error).message}`;
          log?.error({ err: (e as Error).message }, 'XDP address maps not updated: VIP traffic may not reach weir');
        }
      } else if (!opts.noNft) {
        // Drops first, so the kernel is off a new VIP before weir starts forwarding it.
        const drops = {
          vips: [...new Set(vips.map((v) => v.address))],
          snat,
          portMin: config.snatPortMin,
          portMax: config.snatPortMax,
        };
        const script = ingressRuleset(table, config.interfaces, drops);
        if (!nftInstalled || script !== nftApplied) {
          try {
            nftApply(script);
            nftInstalled = true;
            nftApplied = script;
            log?.info(
              {
                table: `netdev ${table}`,
                interfaces: config.interfaces,
                vipAddresses: drops.vips,
                snatAddresses: drops.snat,
              },
              'nftables ingress drops installed',
            );
          } catch (e) {
            lastError = `nftables: ${(e as Error).message}`;
            log?.error(
              { err: (e as Error).message },
              'nftables ingress table not installed: the kernel may answer VIP traffic',
            );
          }
        }
      }
      // The one store per changed VIP; VIPs with fresh descriptors appear when the message lands.
      pub.commit(plan, msg.seq);
      for (const w of workers) w.port.postMessage(msg);
      Atomics.store(control, CTL_PUBLISHED, msg.seq);
      log?.debug(
        { generation, vips: vips.length, tablesWritten: plan.written, vipsPosted: msg.vips !== null },
        'tables published',
      );
    },

    async applied(generation: number, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      const behind = (): number[] =>
        workers
          .map((_, w) => w)
          .filter((w) => counters !== null && counters[workerCounterBase(w) + W_GENERATION] < generation);
      while (behind().length > 0) {
        if (lastError && workers.some((w) => !w.alive)) throw new Error(`data plane: ${lastError}`);
        if (Date.now() > deadline)
          throw new Error(
            `data plane: workers ${behind().join(', ')} did not take tables generation ${generation} within ${timeoutMs} ms${lastError ? ` (${lastError})` : ''}`,
          );
        await new Promise((r) => setTimeout(r, 1));
      }
    },

    traffic(opts: { census?: boolean } = {}): VipTraffic[] {
      if (!slots || !conntrackRef) return [];
      slots.release(minGeneration());
      if (opts.census === false) return slots.read();
      conntrackRef.countByIds(byVip, byBackend);
      return slots.read({ vip: (id) => byVip[id], backend: (id) => byBackend[id] });
    },

    setHealthSink(s: PassiveHealthSink): void {
      sink = s;
    },

    setRateLimits(s: RateLimitSettings): void {
      limiter?.configure(s, ctNow());
      log?.info({ rateLimits: s }, 'rate limits applied');
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
      if (limiter) Object.assign(sum, limiter.stats());
      const alive = workers.filter((w) => w.alive).length;
      const gens = workers.map((_, w) => counters![workerCounterBase(w) + W_GENERATION]);
      const tx =
        sum.txNat + sum.txNatReply + sum.txGre + sum.txL2 + sum.txIcmpToBackend + sum.txIcmpToClient + sum.txFragNeeded;
      const dropped = Object.entries(sum)
        .filter(([k]) => k.startsWith('drop'))
        .reduce((s, [, v]) => s + v, 0);
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
      };
    },

    async detach(opts: { keepIngressDrops?: boolean } = {}): Promise<void> {
      const had = workers.length;
      stopHostWatch?.();
      stopHostWatch = null;
      if (reclaimTimer) clearInterval(reclaimTimer);
      reclaimTimer = null;
      hostView = null;
      hostViewText = '';
      published = null;
      await stopWorkers();
      closeClassifiers(); // detaches the XDP programs: the interfaces are the kernel's again
      restoreOffloads();
      if (nftInstalled && opts.keepIngressDrops) {
        log?.info({ table: `netdev ${table}` }, 'nftables ingress drops kept for the next process (planned restart)');
      } else if (nftInstalled) {
        try {
          nftRemove(table);
          log?.info({ table: `netdev ${table}` }, 'nftables ingress drops removed');
        } catch (e) {
          log?.error({ err: (e as Error).message }, 'could not remove the nftables table');
        }
      }
      nftInstalled = false;
      nftApplied = '';
      // The TUN is not persistent: it and its routes went with the last queue.
      tunRoutes = [];
      if (had) log?.info({ workers: had }, 'data plane detached');
      counters = null;
      slots = null;
      conntrackRef = null;
      publisher = null;
      store = SlotStore.create();
      postedKey = [];
      control = null;
      description = 'not attached';
    },
  };
  return hooks;
}
