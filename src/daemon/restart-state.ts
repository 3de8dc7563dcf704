// What a planned restart carries from one weir process to the next (graceful restart, RFC 4724):
// the connection table, so that flows keep their backend and their NAT mapping while the routers
// keep forwarding to this instance. The old process writes it after its data plane has stopped;
// the new one reads it before its data plane starts, and removes it. Ids are saved with the
// names they stood for, because the new process may number its VIPs and backends differently.
//
// File layout (host byte order, like the table itself):
//   "WEIRGR01"             8 bytes magic
//   header length          u32
//   header                 JSON (RestartHeader), padded with spaces to a multiple of 4 bytes
//   records                entries × recordWords int32 words (ConnTable.dump(); DUMP_WORDS now,
//                          28 in files written before the SYN proxy's words: read as if 0)
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { ConnTable, DUMP_WORDS } from '../lb/conntrack.js';

const MAGIC = Buffer.from('WEIRGR01', 'latin1');
/** Record words of files written before recordWords existed. */
const OLD_RECORD_WORDS = 28;
const HEADER_MAX = 64 * 1024 * 1024;

export interface RestartHeader {
  version: 1;
  instance: string;
  /** Epoch ms of the write: the next process uses it only within restartTime seconds. */
  writtenAtMs: number;
  restartTime: number;
  littleEndian: boolean;
  entries: number;
  /** Words per record (DUMP_WORDS of the writer); absent in older files: 28. */
  recordWords?: number;
  /** Connection-table ids of the old process and the names they stood for. */
  vips: Record<string, string>;
  /** Backend id → [VIP name, backend name]. */
  backends: Record<string, [string, string]>;
}

export interface RestartState {
  header: RestartHeader;
  records: Int32Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Writes the table's live entries with the id names to `file` (via a temporary file and a
 * rename, mode 0600). Returns the entries and bytes written. Throws on an I/O error.
 */
export function writeRestartState(
  file: string,
  table: ConnTable,
  o: {
    instance: string;
    restartTime: number;
    vips: Iterable<[string, number]>;
    backends: Iterable<[string, string, number]>;
    now?: number;
  },
): { entries: number; bytes: number } {
  const records = table.dump();
  const header: RestartHeader = {
    version: 1,
    instance: o.instance,
    writtenAtMs: o.now ?? Date.now(),
    restartTime: o.restartTime,
    littleEndian: LITTLE_ENDIAN,
    entries: records.length / DUMP_WORDS,
    recordWords: DUMP_WORDS,
    vips: Object.fromEntries([...o.vips].map(([name, id]) => [String(id), name])),
    backends: Object.fromEntries([...o.backends].map(([vip, name, id]) => [String(id), [vip, name]])),
  };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length % 4 !== 0) json = Buffer.concat([json, Buffer.alloc(4 - (json.length % 4), 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const body = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    for (const part of [MAGIC, len, json, body]) {
      for (let off = 0; off < part.length;) off += writeSync(fd, part, off, part.length - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return { entries: header.entries, bytes: MAGIC.length + 4 + json.length + body.length };
}

/**
 * Reads and removes `file`. Returns null when there is none, the state when it is whole and at
 * most its restartTime old, or an error text (stale, truncated, another byte order, not ours) —
 * never throws, since a bad file must not stop weir from starting.
 */
export function takeRestartState(file: string, now = Date.now()): RestartState | null | { error: string } {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { error: `cannot read ${file}: ${(e as Error).message}` };
  }
  try {
    rmSync(file, { force: true }); // consumed: a later crash must not bring back old flows
  } catch {
    // read-only directory: the age check below still protects the next start
  }
  if (buf.length < 12 || !buf.subarray(0, 8).equals(MAGIC))
    return { error: `${file} is not a weir restart state file` };
  const hlen = buf.readUInt32LE(8);
  if (hlen > HEADER_MAX || 12 + hlen > buf.length) return { error: `${file} is truncated (header)` };
  let header: RestartHeader;
  try {
    header = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8')) as RestartHeader;
  } catch {
    return { error: `${file} has a corrupt header` };
  }
  if (
    header.version !== 1 ||
    typeof header.entries !== 'number' ||
    typeof header.writtenAtMs !== 'number' ||
    typeof header.vips !== 'object' ||
    typeof header.backends !== 'object'
  ) {
    return { error: `${file} has an unknown header` };
  }
  if (header.littleEndian !== LITTLE_ENDIAN)
    return { error: `${file} was written on a machine of the other byte order` };
  const ageMs = now - header.writtenAtMs;
  if (!(ageMs >= 0 && ageMs <= header.restartTime * 1000)) {
    return {
      error: `${file} is ${Math.round(ageMs / 1000)} s old, more than its restart time (${header.restartTime} s): the routers have dropped weir's routes by now`,
    };
  }
  const start = 12 + hlen;
  const words = header.recordWords ?? OLD_RECORD_WORDS;
  if (!Number.isInteger(words) || words < OLD_RECORD_WORDS || words > DUMP_WORDS)
    return { error: `${file} has records of ${words} words; this weir reads ${OLD_RECORD_WORDS}..${DUMP_WORDS}` };
  const bytes = header.entries * words * 4;
  if (!Number.isInteger(header.entries) || header.entries < 0 || buf.length - start !== bytes)
    return { error: `${file} is truncated (${buf.length - start} of ${bytes} record bytes)` };
  const read = new Int32Array(header.entries * words);
  new Uint8Array(read.buffer).set(buf.subarray(start));
  if (words === DUMP_WORDS) return { header, records: read };
  // An older layout: its words first, the newer ones (SYN proxy) 0.
  const records = new Int32Array(header.entries * DUMP_WORDS);
  for (let i = 0; i < header.entries; i++) records.set(read.subarray(i * words, (i + 1) * words), i * DUMP_WORDS);
  return { header, records };
}

export interface RestoreReport {
  restored: number;
  /** Entries whose VIP or backend the new config no longer has. */
  orphaned: number;
  /** Entries the table refused (full, NAT reply key taken). */
  failed: number;
}

/**
 * Puts the saved entries into `table` under the new process's ids, found by name: `vipId(name)`
 * and `backendId(vip, name)` return undefined for ones that are gone.
 */
export function restoreConnections(
  table: ConnTable,
  state: RestartState,
  ids: { vipId(name: string): number | undefined; backendId(vip: string, name: string): number | undefined },
): RestoreReport {
  const report: RestoreReport = { restored: 0, orphaned: 0, failed: 0 };
  const { records, header } = state;
  for (let off = 0; off < records.length; off += DUMP_WORDS) {
    const [oldVip, oldBackend] = ConnTable.dumpedIds(records, off);
    const vipName = header.vips[String(oldVip)];
    const backend = header.backends[String(oldBackend)];
    const vipId = vipName !== undefined ? ids.vipId(vipName) : undefined;
    const backendId =
      backend !== undefined && backend[0] === vipName ? ids.backendId(backend[0], backend[1]) : undefined;
    if (vipId === undefined || backendId === undefined) {
      report.orphaned++;
      continue;
    }
    if (table.restore(records, off, vipId, backendId) >= 0) report.restored++;
    else report.failed++;
  }
  return report;
}
