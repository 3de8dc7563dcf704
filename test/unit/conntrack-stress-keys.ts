// Keys and job description shared by the connection-table stress test and its workers:
// every field of flow i is a function of i, so any entry can be checked for torn fields.
import type { ConnTableShared } from '../../src/lb/conntrack.js';

export interface StressJob {
  shared: ConnTableShared;
  results: SharedArrayBuffer;
  go: SharedArrayBuffer;
  phase: 'same' | 'different' | 'churn';
  id: number;
  keys: number;
  durationMs: number;
  stableLo: number;
  stableN: number;
}

export interface StressFlow {
  client: number;
  clientPort: number;
  vip: number;
  vipId: number;
  backendId: number;
  backend: number;
  snat: number;
  snatPort: number;
}

export function flowOf(i: number): StressFlow {
  return {
    client: (0x0a000000 + i) >>> 0,
    clientPort: 1024 + (i % 60000),
    vip: 0xc6120001,
    vipId: (i * 7) & 0xffff,
    backendId: i & 0xffff,
    backend: (0xc6130000 + (i & 0xff)) >>> 0,
    snat: (0xc6120000 + (i >>> 16)) >>> 0,
    snatPort: i & 0xffff,
  };
}
