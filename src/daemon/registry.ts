// Small stable integer ids for VIPs and backends. Connection entries carry them in 16 bits
// (src/lb/conntrack.ts), so ids run 1..65535: VIP ids in all, backend ids within each VIP. A name keeps its id across reloads; a released
// id is handed out again only once the counter has used up the range, so an old connection
// entry is not mistaken for a new VIP or backend (the daemon also flushes a removed one's flows).
export const MAX_ID = 0xffff;

export class IdRegistry {
  private readonly ids = new Map<string, number>();
  private readonly used = new Set<number>();
  private next = 1;

  /** The id of `key`, assigning one on first use. Throws when all 65535 ids are taken. */
  idFor(key: string): number {
    let id = this.ids.get(key);
    if (id !== undefined) return id;
    if (this.used.size >= MAX_ID) throw new Error(`more than ${MAX_ID} ids in use`);
    while (this.used.has(this.next)) this.next = this.next >= MAX_ID ? 1 : this.next + 1;
    id = this.next;
    this.next = this.next >= MAX_ID ? 1 : this.next + 1;
    this.ids.set(key, id);
    this.used.add(id);
    return id;
  }

  /** The id of `key` or undefined; never assigns. */
  peek(key: string): number | undefined {
    return this.ids.get(key);
  }

  release(key: string): void {
    const id = this.ids.get(key);
    if (id === undefined) return;
    this.ids.delete(key);
    this.used.delete(id);
  }

  get size(): number {
    return this.ids.size;
  }

  /** Every (key, id) pair (a planned restart saves them beside the connection table). */
  entries(): [string, number][] {
    return [...this.ids];
  }
}

/**
 * Backend ids: connection entries carry (vipId, backendId), so a backend id needs to be unique
 * only within its VIP. One cursor runs over 1..65535 for every VIP, so ids stay unique across
 * VIPs as long as fewer than 65535 (VIP, backend) pairs exist, and beyond that each VIP still
 * gets ids of its own: the ceiling is 65535 backends per VIP, not 65535 in all. Same interface
 * as IdRegistry, keyed by backendKey(vip, backend).
 */
export class BackendIdRegistry {
  private readonly byVip = new Map<string, { ids: Map<string, number>; used: Set<number> }>();
  private next = 1;
  private count = 0;

  /** The id of backendKey(vip, backend), assigning one on first use. Throws when its VIP has 65535 backends. */
  idFor(key: string): number {
    const [vip, name] = splitKey(key);
    let v = this.byVip.get(vip);
    const known = v?.ids.get(name);
    if (known !== undefined) return known;
    if (!v) this.byVip.set(vip, (v = { ids: new Map(), used: new Set() }));
    if (v.used.size >= MAX_ID) throw new Error(`VIP ${vip}: more than ${MAX_ID} backend ids in use`);
    while (v.used.has(this.next)) this.next = this.next >= MAX_ID ? 1 : this.next + 1;
    const id = this.next;
    this.next = this.next >= MAX_ID ? 1 : this.next + 1;
    v.ids.set(name, id);
    v.used.add(id);
    this.count++;
    return id;
  }

  peek(key: string): number | undefined {
    const [vip, name] = splitKey(key);
    return this.byVip.get(vip)?.ids.get(name);
  }

  release(key: string): void {
    const [vip, name] = splitKey(key);
    const v = this.byVip.get(vip);
    const id = v?.ids.get(name);
    if (!v || id === undefined) return;
    v.ids.delete(name);
    v.used.delete(id);
    this.count--;
    if (v.ids.size === 0) this.byVip.delete(vip);
  }

  get size(): number {
    return this.count;
  }

  /** Every (backendKey, id) pair. */
  entries(): [string, number][] {
    const out: [string, number][] = [];
    for (const [vip, v] of this.byVip) for (const [name, id] of v.ids) out.push([backendKey(vip, name), id]);
    return out;
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('\u0000');
  return i < 0 ? [key, ''] : [key.slice(0, i), key.slice(i + 1)];
}

/** Registry key of a backend: ids are per (VIP, backend name), the Maglev identity. */
export function backendKey(vipName: string, backendName: string): string {
  return `${vipName}\u0000${backendName}`;
}
