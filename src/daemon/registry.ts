// Small stable integer ids for VIPs and backends. Connection entries carry them in 16 bits
// (src/lb/conntrack.ts), so ids run 1..65535. A name keeps its id across reloads; a released
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

/** Registry key of a backend: ids are per (VIP, backend name), the Maglev identity. */
export function backendKey(vipName: string, backendName: string): string {
  return `${vipName}\u0000${backendName}`;
}
