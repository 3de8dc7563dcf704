// The flow hash: field choice per VIP, v4/v6 hot paths agree with the textual control-plane
// form, seeding, spread over a Maglev table, and the address parsers behind flowHashOf.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  flowHashOf,
  flowHashV4,
  flowHashV6,
  hashFieldsCode,
  hashSeed,
  HASH_FIVE_TUPLE,
  HASH_NO_SOURCE_PORT,
  HASH_SOURCE_ONLY,
} from '../../src/lb/flow-hash.js';
import { buildMaglev } from '../../src/lb/maglev.js';
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

const seed = hashSeed('fields');
const v4 = (s: string): number => parseIpv4(s);

describe('field choice', () => {
  test('hashFieldsCode maps the config names to the codes and rejects others', () => {
    assert.equal(hashFieldsCode('five-tuple'), HASH_FIVE_TUPLE);
    assert.equal(hashFieldsCode('source-ip'), HASH_SOURCE_ONLY);
    assert.equal(hashFieldsCode('no-source-port'), HASH_NO_SOURCE_PORT);
    assert.deepEqual([HASH_FIVE_TUPLE, HASH_SOURCE_ONLY, HASH_NO_SOURCE_PORT], [0, 1, 2]);
    assert.throws(() => hashFieldsCode('src' as never), /unknown hash fields "src"/);
    assert.throws(() => hashFieldsCode('toString' as never), /unknown hash fields/);
  });

  const base = { proto: 6, s: v4('198.18.0.1'), d: v4('198.18.1.1'), sp: 40000, dp: 80 };
  const h = (f: number, o: Partial<typeof base> = {}): number => {
    const x = { ...base, ...o };
    return flowHashV4(seed, f, x.proto, x.s, x.d, x.sp, x.dp);
  };
  // [field, which inputs it must depend on]
  const deps: Array<[string, number, Array<keyof typeof base>, Array<keyof typeof base>]> = [
    ['five-tuple', HASH_FIVE_TUPLE, ['proto', 's', 'd', 'sp', 'dp'], []],
    ['source-ip', HASH_SOURCE_ONLY, ['s'], ['proto', 'd', 'sp', 'dp']],
    ['no-source-port', HASH_NO_SOURCE_PORT, ['proto', 's', 'd', 'dp'], ['sp']],
  ];
  const changed: typeof base = { proto: 17, s: v4('198.18.0.2'), d: v4('198.18.1.2'), sp: 40001, dp: 443 };
  for (const [name, code, uses, ignores] of deps) {
    test(`${name} depends on ${uses.join(', ')}${ignores.length ? ` and ignores ${ignores.join(', ')}` : ''}`, () => {
      for (const k of uses) assert.notEqual(h(code, { [k]: changed[k] }), h(code), `changing ${k}`);
      for (const k of ignores) assert.equal(h(code, { [k]: changed[k] }), h(code), `changing ${k}`);
    });
  }

  test('the three field choices give different hashes for the same tuple', () => {
    assert.equal(new Set([h(HASH_FIVE_TUPLE), h(HASH_SOURCE_ONLY), h(HASH_NO_SOURCE_PORT)]).size, 3);
  });

  test('an unknown field code is hashed as the five-tuple and does not throw (hot path)', () => {
    assert.equal(h(7), h(HASH_FIVE_TUPLE));
    assert.equal(h(-1), h(HASH_FIVE_TUPLE));
  });

  test('every byte of a v6 source address counts for every field choice; destination bytes not for source-ip', () => {
    const buf = new Uint8Array(32);
    assert.ok(parseIpv6('fd00:1111:2222:3333:4444:5555:6666:7777', buf, 0));
    assert.ok(parseIpv6('fd00:1::10', buf, 16));
    for (const f of [HASH_FIVE_TUPLE, HASH_SOURCE_ONLY, HASH_NO_SOURCE_PORT]) {
      const ref = flowHashV6(seed, f, 6, buf, 0, 16, 1000, 80);
      for (let i = 0; i < 32; i++) {
        const copy = buf.slice();
        copy[i] ^= 0x01;
        const changed = flowHashV6(seed, f, 6, copy, 0, 16, 1000, 80) !== ref;
        assert.equal(changed, i < 16 || f !== HASH_SOURCE_ONLY, `fields ${f}, byte ${i}`);
      }
    }
  });

  test('the same v6 client is sticky under source-ip whatever the ports and destination', () => {
    const a = flowHashOf(seed, HASH_SOURCE_ONLY, 6, 'fd00::abcd', 1234, 'fd00:1::1', 80);
    const b = flowHashOf(seed, HASH_SOURCE_ONLY, 17, 'fd00::abcd', 999, 'fd00:1::2', 53);
    assert.equal(a, b);
  });
});

describe('hot path and control plane agree', () => {
  test('flowHashOf equals flowHashV4 for any v4 tuple and field choice', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 255 }),
        fc.ipV4(),
        fc.ipV4(),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (f, proto, s, d, sp, dp, sd) => {
          assert.equal(flowHashOf(sd, f, proto, s, sp, d, dp), flowHashV4(sd, f, proto, v4(s), v4(d), sp, dp));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('flowHashOf equals flowHashV6 for any v6 tuple, read at any offsets in a packet buffer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.ipV6(),
        fc.ipV6(),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 40 }),
        (f, s, d, sp, dp, off) => {
          const buf = new Uint8Array(off + 32 + 8).fill(0xee);
          assert.ok(parseIpv6(s, buf, off));
          assert.ok(parseIpv6(d, buf, off + 16));
          assert.equal(flowHashV6(seed, f, 6, buf, off, off + 16, sp, dp), flowHashOf(seed, f, 6, s, sp, d, dp));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('the hash is a uint32 and changes with the seed', () => {
    const a = flowHashOf(1, HASH_FIVE_TUPLE, 6, '198.18.0.1', 1, '198.18.0.2', 2);
    const b = flowHashOf(2, HASH_FIVE_TUPLE, 6, '198.18.0.1', 1, '198.18.0.2', 2);
    assert.notEqual(a, b);
    for (const x of [a, b]) assert.ok(Number.isInteger(x) && x >= 0 && x <= 0xffffffff);
  });

  test('flowHashOf rejects malformed and mixed-family addresses with a clear error', () => {
    assert.throws(
      () => flowHashOf(0, 0, 6, '198.18.0.256', 1, '198.18.0.1', 2),
      /cannot parse source address "198.18.0.256"/,
    );
    assert.throws(
      () => flowHashOf(0, 0, 6, 'fd00::1', 1, 'fd00:::2', 2),
      /cannot parse destination address "fd00:::2"/,
    );
    assert.throws(() => flowHashOf(0, 0, 6, '198.18.0.1', 1, 'fd00::2', 2), /different address families/);
  });
});

describe('spread', () => {
  test('flipping one input bit flips about half of the output bits on average', () => {
    let total = 0;
    let trials = 0;
    for (let t = 0; t < 200; t++) {
      const s = (0xc6120000 + t * 7919) >>> 0;
      const ref = flowHashV4(seed, HASH_FIVE_TUPLE, 6, s, 0xc6120101, 1024 + t, 80);
      for (let bit = 0; bit < 32; bit++) {
        const x = flowHashV4(seed, HASH_FIVE_TUPLE, 6, (s ^ (1 << bit)) >>> 0, 0xc6120101, 1024 + t, 80);
        let d = (x ^ ref) >>> 0;
        let c = 0;
        while (d) {
          d &= d - 1;
          c++;
        }
        total += c;
        trials++;
      }
    }
    const avg = total / trials;
    assert.ok(avg > 15.5 && avg < 16.5, `average ${avg} bits flipped`);
  });

  test('consecutive source ports of one client spread evenly over 100 equal backends', () => {
    const table = buildMaglev(
      Array.from({ length: 100 }, (_, i) => ({ id: `b${i}`, weight: 1 })),
      { size: 65537, seed },
    );
    const counts = new Array<number>(100).fill(0);
    const flows = 200_000;
    for (let i = 0; i < flows; i++) {
      counts[
        table.lookup(flowHashV4(seed, HASH_FIVE_TUPLE, 6, 0xc6120001 + (i >>> 16), 0xc6120101, i & 0xffff, 443))
      ]++;
    }
    // Expect 2000 per backend, σ ≈ 44; allow ±10%.
    for (const c of counts) assert.ok(c > 1800 && c < 2200, `counts ${Math.min(...counts)}..${Math.max(...counts)}`);
  });
});

describe('address parsers', () => {
  const goodV4: Array<[string, number]> = [
    ['0.0.0.0', 0],
    ['198.18.0.1', 0xc6120001],
    ['255.255.255.255', 0xffffffff],
  ];
  for (const [s, want] of goodV4) test(`parseIpv4 reads ${s}`, () => assert.equal(parseIpv4(s), want));
  for (const s of ['1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1.2.3.a', '', ' 1.2.3.4']) {
    test(`parseIpv4 rejects "${s}"`, () => assert.equal(parseIpv4(s), -1));
  }
  const goodV6: Array<[string, string]> = [
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fd00::1', 'fd000000000000000000000000000001'],
    ['fd00:1:2:3:4:5:6:7', 'fd000001000200030004000500060007'],
    ['::ffff:198.18.0.1', '00000000000000000000ffffc6120001'],
    ['1::', '00010000000000000000000000000000'],
    ['FD00::AbCd', 'fd00000000000000000000000000abcd'],
  ];
  for (const [s, hex] of goodV6) {
    test(`parseIpv6 reads ${s}`, () => {
      const b = new Uint8Array(16);
      assert.ok(parseIpv6(s, b));
      assert.equal(Buffer.from(b).toString('hex'), hex);
    });
  }
  for (const s of [
    ':::',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    'fd00::12345',
    '1:2:3:4:5:6:7',
    'g::1',
    '::1.2.3',
    '1:2:3:4:5:6:7::8',
    'fe80::1%eth0',
    '',
    '1.2.3.4::',
    '1:1.2.3.4::5',
    '::ffff:01.2.3.4',
  ]) {
    test(`parseIpv6 rejects "${s}"`, () => assert.equal(parseIpv6(s, new Uint8Array(16)), false));
  }
});
