// Per-VIP and per-backend traffic counters: the layout workers increment (BatchRunner, two
// increments per forwarded packet into Float64Arrays in shared memory) and the control thread's
// side, which gives every VIP and backend name a counter slot, sums the workers' stripes when
// read, and folds and recycles the slots of names a reload removed.
//
// A slot belongs to a name, not to an id or a table index, so a reload that renumbers VIPs
// never moves counts between them. A removed name's slot is kept until every worker runs a
// generation without it (nobody writes there any more); its counts are then folded into its
// VIP (a removed backend) or dropped with it (a removed VIP), and the slot is zeroed for reuse.
// KEEP IN SYNC: the field offsets are shared by batch-runner.ts (writer) and this file (reader).

/** Per VIP slot: packets and IP bytes for the VIP that were not forwarded, per direction. */
export const V_DROP_IN_PKTS = 0;
export const V_DROP_IN_BYTES = 1;
export const V_DROP_OUT_PKTS = 2;
export const V_DROP_OUT_BYTES = 3;
export const VIP_FIELDS = 4;
/** Per backend slot: client → backend and backend → client (nat replies) packets and IP bytes, new flows. */
export const B_IN_PKTS = 0;
export const B_IN_BYTES = 1;
export const B_OUT_PKTS = 2;
export const B_OUT_BYTES = 3;
export const B_NEW_FLOWS = 4;
export const BACKEND_FIELDS = 5;

/** Slots per worker. Slot 0 is the sink for names that found no free slot (never reported). */
export const VIP_SLOTS = 1024;
export const BACKEND_SLOTS = 8192;

/** Float64 words of one worker's region: VIP slots, then backend slots. */
export const TRAFFIC_WORDS = VIP_SLOTS * VIP_FIELDS + BACKEND_SLOTS * BACKEND_FIELDS;
/** Where the backend slots start in a worker's region. */
export const TRAFFIC_BACKEND_BASE = VIP_SLOTS * VIP_FIELDS;

export interface BackendTraffic {
  name: string;
  /** Packets and IP bytes weir forwarded client → backend. */
  packetsIn: number;
  bytesIn: number;
  /** nat: packets and bytes backend → client (DSR replies bypass weir: 0). */
  packetsOut: number;
  bytesOut: number;
  newFlows: number;
  /** Live connection-table entries of the backend now. */
  activeFlows: number;
}

export interface VipTraffic extends Omit<BackendTraffic, 'name'> {
  name: string;
  /** Packets (and bytes) for the VIP that were not forwarded: dropped, or answered with an ICMP error. */
  droppedIn: number;
  droppedOut: number;
  backends: BackendTraffic[];
}

const SEP = '\u0000';

interface Pending {
  kind: 'vip' | 'backend';
  key: string;
  slot: number;
  /** The generation that no longer has the name: free once every worker runs it. */
  generation: number;
}

/** Names of a table generation as the slot map needs them. */
export interface TrafficNames {
  name: string;
  id: number;
  backends: readonly { name: string; id: number }[];
}

/**
 * The control thread's map from names to counter slots over `regions` (one Float64Array per
 * worker, TRAFFIC_WORDS each). Pure bookkeeping: no I/O, no timers.
 */
export class TrafficSlots {
  private readonly vipSlot = new Map<string, number>();
  private readonly backendSlot = new Map<string, number>();
  private readonly freeVip: number[] = [];
  private readonly freeBackend: number[] = [];
  private pending: Pending[] = [];
  /** Counts of removed backends, folded into their VIP: [in pkts, in bytes, out pkts, out bytes, new flows]. */
  private readonly retired = new Map<string, number[]>();
  private current: readonly TrafficNames[] = [];
  /** Names that found no free slot (logged by the caller). */
  overflow: string[] = [];

  constructor(
    private readonly regions: readonly Float64Array[],
    readonly vipSlots = VIP_SLOTS,
    readonly backendSlots = BACKEND_SLOTS,
  ) {
    for (let s = vipSlots - 1; s >= 1; s--) this.freeVip.push(s);
    for (let s = backendSlots - 1; s >= 1; s--) this.freeBackend.push(s);
  }

  /**
   * Slots for every VIP and backend of `generation` (names keep theirs); names that left are
   * queued for release. Returns lookups for the tables message.
   */
  assign(
    generation: number,
    vips: readonly TrafficNames[],
  ): { vip(name: string): number; backend(vip: string, backend: string): number } {
    // The same names as last time and no slot freed since: nothing to do (a health change or a
    // reweight republishes every VIP; at thousands of VIPs the walk below costs tens of ms).
    const sig = vips.map(namesOf);
    if (
      this.lastLookup &&
      this.freeVip.length === this.lastFree[0] &&
      this.freeBackend.length === this.lastFree[1] &&
      sig.length === this.lastSig.length &&
      sig.every((x, i) => x === this.lastSig[i])
    ) {
      this.current = vips;
      return this.lastLookup;
    }
    this.overflow = [];
    const wantV = new Set(vips.map((v) => v.name));
    const wantB = new Set(vips.flatMap((v) => v.backends.map((b) => v.name + SEP + b.name)));
    for (const [key, slot] of this.vipSlot)
      if (!wantV.has(key) && !this.isPending('vip', key)) this.pending.push({ kind: 'vip', key, slot, generation });
    for (const [key, slot] of this.backendSlot)
      if (!wantB.has(key) && !this.isPending('backend', key))
        this.pending.push({ kind: 'backend', key, slot, generation });
    // A name that came back before its slot was released keeps it.
    this.pending = this.pending.filter((p) => !(p.kind === 'vip' ? wantV : wantB).has(p.key));
    for (const v of vips) {
      this.take(this.vipSlot, this.freeVip, v.name, `VIP ${v.name}`);
      for (const b of v.backends)
        this.take(this.backendSlot, this.freeBackend, v.name + SEP + b.name, `VIP ${v.name} backend ${b.name}`);
    }
    this.current = vips;
    this.lastSig = sig;
    this.lastFree = [this.freeVip.length, this.freeBackend.length];
    this.lastLookup = {
      vip: (name) => this.vipSlot.get(name) ?? 0,
      backend: (vip, backend) => this.backendSlot.get(vip + SEP + backend) ?? 0,
    };
    this.assigned++;
    return this.lastLookup;
  }

  /** How many times assign() (re)assigned slots: a caller may keep what it derived from the lookups until this changes. */
  assigned = 0;
  private lastSig: string[] = [];
  private lastFree: [number, number] = [-1, -1];
  private lastLookup: { vip(name: string): number; backend(vip: string, backend: string): number } | null = null;

  private isPending(kind: 'vip' | 'backend', key: string): boolean {
    return this.pending.some((p) => p.kind === kind && p.key === key);
  }

  private take(map: Map<string, number>, free: number[], key: string, what: string): void {
    if (map.has(key)) return;
    const s = free.pop();
    if (s === undefined) this.overflow.push(what);
    else map.set(key, s);
  }

  /**
   * Releases the slots of names every worker has left (`minGeneration`: the oldest generation a
   * worker runs): a backend's counts are folded into its VIP if the VIP is still there, and the
   * slot is zeroed in every region before it is handed out again.
   */
  release(minGeneration: number): void {
    const keep: Pending[] = [];
    for (const p of this.pending) {
      if (p.generation > minGeneration) {
        keep.push(p);
        continue;
      }
      if (p.kind === 'vip') {
        this.zero(p.slot * VIP_FIELDS, VIP_FIELDS);
        this.vipSlot.delete(p.key);
        this.retired.delete(p.key);
        this.freeVip.push(p.slot);
      } else {
        const vip = p.key.slice(0, p.key.indexOf(SEP));
        const base = TRAFFIC_BACKEND_BASE + p.slot * BACKEND_FIELDS;
        if (this.vipSlot.has(vip) && !this.isPending('vip', vip)) {
          const acc = this.retired.get(vip) ?? [0, 0, 0, 0, 0];
          for (let f = 0; f < BACKEND_FIELDS; f++) acc[f] += this.sum(base + f);
          this.retired.set(vip, acc);
        }
        this.zero(base, BACKEND_FIELDS);
        this.backendSlot.delete(p.key);
        this.freeBackend.push(p.slot);
      }
    }
    this.pending = keep;
  }

  private sum(i: number): number {
    let s = 0;
    for (const r of this.regions) s += r[i];
    return s;
  }

  private zero(at: number, n: number): void {
    for (const r of this.regions) r.fill(0, at, at + n);
  }

  /** Slots in use (VIPs, backends), and names waiting for release. */
  usage(): { vips: number; backends: number; pending: number } {
    return { vips: this.vipSlot.size, backends: this.backendSlot.size, pending: this.pending.length };
  }

  /**
   * The counts of the current generation's VIPs and backends, summed over the workers.
   * `active(vipId|backendId)` gives live connection entries (a census of the table).
   */
  read(active?: { vip(id: number): number; backend(id: number): number }): VipTraffic[] {
    return this.current.map((v) => {
      const vs = this.vipSlot.get(v.name) ?? 0;
      const vb = vs * VIP_FIELDS;
      const backends = v.backends.map((b): BackendTraffic => {
        const s = this.backendSlot.get(v.name + SEP + b.name) ?? 0;
        const base = TRAFFIC_BACKEND_BASE + s * BACKEND_FIELDS;
        const got = s !== 0;
        return {
          name: b.name,
          packetsIn: got ? this.sum(base + B_IN_PKTS) : 0,
          bytesIn: got ? this.sum(base + B_IN_BYTES) : 0,
          packetsOut: got ? this.sum(base + B_OUT_PKTS) : 0,
          bytesOut: got ? this.sum(base + B_OUT_BYTES) : 0,
          newFlows: got ? this.sum(base + B_NEW_FLOWS) : 0,
          activeFlows: active?.backend(b.id) ?? 0,
        };
      });
      const r = this.retired.get(v.name) ?? [0, 0, 0, 0, 0];
      const add = (k: keyof BackendTraffic, f: number): number => backends.reduce((s, b) => s + (b[k] as number), r[f]);
      const got = vs !== 0;
      const dIn = got ? this.sum(vb + V_DROP_IN_PKTS) : 0;
      const dOut = got ? this.sum(vb + V_DROP_OUT_PKTS) : 0;
      return {
        name: v.name,
        packetsIn: add('packetsIn', B_IN_PKTS) + dIn,
        bytesIn: add('bytesIn', B_IN_BYTES) + (got ? this.sum(vb + V_DROP_IN_BYTES) : 0),
        packetsOut: add('packetsOut', B_OUT_PKTS) + dOut,
        bytesOut: add('bytesOut', B_OUT_BYTES) + (got ? this.sum(vb + V_DROP_OUT_BYTES) : 0),
        newFlows: add('newFlows', B_NEW_FLOWS),
        activeFlows: active?.vip(v.id) ?? 0,
        droppedIn: dIn,
        droppedOut: dOut,
        backends,
      };
    });
  }
}

/** A VIP's names (VIP, then its backends) as one string, cached per object (unchanged VIPs keep theirs across publishes). */
const namesCache = new WeakMap<TrafficNames, string>();
function namesOf(v: TrafficNames): string {
  let k = namesCache.get(v);
  if (k === undefined) namesCache.set(v, (k = [v.name, ...v.backends.map((b) => b.name)].join(SEP)));
  return k;
}
