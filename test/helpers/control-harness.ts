// Test harness: runs the real daemon (`weir run` code path) with a fake data plane fed through
// the DataPlaneHooks seam. It inserts the flows listed in a JSON file into the shared connection
// table, choosing each backend with the VIP's Maglev table as a worker would, and reports what
// it was published in `weir status` (dataplane.counters). No packets, no privileges.
// Usage: node dist-test/test/helpers/control-harness.js CONFIG.yaml FLOWS.json
import { readFileSync } from 'node:fs';
import { runDaemon } from '../../src/daemon/run.js';
import type { DataPlaneHooks, VipTables } from '../../src/dataplane/contract.js';
import { ctNow, CT_DIR_ORIG, TH_ACK, TH_SYN, type ConnTable } from '../../src/lb/conntrack.js';
import { flowHashOf } from '../../src/lb/flow-hash.js';
import { ipv4ToU32, parseIp } from '../../src/packet/index.js';

/** IPv4 text as a uint32 (-1 when not IPv4), and IPv6 text into buf (false when not IPv6), through the one codec. */
function parseIpv4(text: string): number {
  const a = parseIp(text);
  return a?.length === 4 ? ipv4ToU32(a) : -1;
}
function parseIpv6(text: string, out: Uint8Array, off = 0): boolean {
  const a = parseIp(text);
  if (a?.length !== 16) return false;
  out.set(a, off);
  return true;
}

export interface FlowSpec {
  vip: string;
  client: string;
  clientPort: number;
  /** Destination port for an all-ports VIP. */
  vipPort?: number;
  /** established (SYN then ACK), syn_sent (SYN only); UDP flows are always UDP. */
  state?: 'established' | 'syn_sent';
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

export function feedDataPlane(flows: FlowSpec[]): DataPlaneHooks {
  let ct: ConnTable | undefined;
  let fed = false;
  let previous = new Map<string, VipTables['table']>();
  const counters = { publishes: 0, generation: 0, vips: 0, tablesReused: 0, tablesRebuilt: 0, flowsInserted: 0 };
  const feed = (vips: readonly VipTables[]) => {
    const buf = new Uint8Array(32);
    for (const f of flows) {
      const v = vips.find((x) => x.name === f.vip);
      if (!v || !ct) throw new Error(`harness: no VIP ${f.vip}`);
      const proto = v.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
      const dport = v.port ?? f.vipPort ?? 0;
      const idx = v.table.lookup(flowHashOf(v.seed, v.hashFields, proto, f.client, f.clientPort, v.address, dport));
      const b = v.backends[idx];
      const now = ctNow();
      let e: number;
      if (v.address.includes(':')) {
        parseIpv6(f.client, buf, 0);
        parseIpv6(v.address, buf, 16);
        e = ct.insert6(proto, buf, 0, f.clientPort, 16, dport, v.id, b.id, now);
      } else {
        e = ct.insert4(proto, parseIpv4(f.client) | 0, f.clientPort, parseIpv4(v.address) | 0, dport, v.id, b.id, now);
      }
      if (e < 0) throw new Error(`harness: insert failed (${e})`);
      if (proto === IPPROTO_TCP) {
        ct.track(e, CT_DIR_ORIG, TH_SYN, 60, now);
        if (f.state !== 'syn_sent') ct.track(e, CT_DIR_ORIG, TH_ACK, 52, now);
      } else ct.track(e, CT_DIR_ORIG, 0, 100, now);
      counters.flowsInserted++;
    }
  };
  return {
    attach(_cfg, conntrack) {
      ct = conntrack;
      return Promise.resolve();
    },
    publish(generation, vips) {
      counters.publishes++;
      counters.generation = generation;
      counters.vips = vips.length;
      let reused = 0;
      for (const v of vips) if (previous.get(v.name) === v.table) reused++;
      counters.tablesReused = reused;
      counters.tablesRebuilt = vips.length - reused;
      previous = new Map(vips.map((v) => [v.name, v.table]));
      if (!fed) {
        fed = true;
        feed(vips);
      }
    },
    status: () => ({
      attached: true,
      description: `test feed (${counters.flowsInserted} flows)`,
      counters: { ...counters },
    }),
    async detach() {},
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const [configFile, flowsFile] = process.argv.slice(2);
  const flows = flowsFile ? (JSON.parse(readFileSync(flowsFile, 'utf8')) as FlowSpec[]) : [];
  process.exit(await runDaemon(configFile, { hooks: feedDataPlane(flows) }));
}
