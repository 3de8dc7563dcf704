// Which interface a dsr-l2 backend is on: on-link prefix matching (longest prefix wins), and
// reading the host's own interfaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkOf, readLinks, type Link } from '../../src/dataplane/links.js';
import { cidrContains, parseCidr, parseIp } from '../../src/packet/index.js';

const link = (name: string, ifindex: number, ...prefixes: string[]): Link => ({
  name,
  ifindex,
  mac: `02:00:00:00:00:0${ifindex}`,
  prefixes: prefixes.map((p) => parseCidr(p)!),
});

test('cidrContains compares the prefix bits of the same family only', () => {
  const c = parseCidr('198.18.2.0/23')!;
  assert.equal(cidrContains(c, parseIp('198.18.3.255')!), true);
  assert.equal(cidrContains(c, parseIp('198.18.4.0')!), false);
  assert.equal(cidrContains(parseCidr('198.18.2.7/0')!, parseIp('203.0.113.1')!), true);
  assert.equal(cidrContains(parseCidr('fd00:0:0:2::11/64')!, parseIp('fd00:0:0:2::23')!), true);
  assert.equal(cidrContains(parseCidr('fd00:0:0:2::11/64')!, parseIp('fd00:0:0:3::23')!), false);
  assert.equal(cidrContains(parseCidr('fd00::/8')!, parseIp('198.18.2.1')!), false, 'other family');
  assert.equal(cidrContains(parseCidr('198.18.2.1/31')!, parseIp('198.18.2.0')!), true);
  assert.equal(cidrContains(parseCidr('198.18.2.1/32')!, parseIp('198.18.2.0')!), false);
});

test('linkOf picks the interface whose on-link prefix holds the backend, the longest prefix first, and none when off-link', () => {
  const links = [
    link('up0', 2, '198.18.1.11/24', 'fd00:0:0:1::11/64'),
    link('be0', 3, '198.18.2.11/24', 'fd00:0:0:2::11/64'),
    link('be1', 4, '198.18.2.129/25'),
  ];
  assert.equal(linkOf(links, '198.18.1.50')?.name, 'up0');
  assert.equal(linkOf(links, '198.18.2.21')?.name, 'be0');
  assert.equal(linkOf(links, '198.18.2.200')?.name, 'be1', 'a /25 beats the /24');
  assert.equal(linkOf(links, 'fd00:0:0:2::23')?.name, 'be0');
  assert.equal(linkOf(links, '203.0.113.9'), undefined);
  assert.equal(linkOf(links, 'not an address'), undefined);
});

test('readLinks reads ifindex, MAC and prefixes of a real interface and names a missing one', () => {
  const [lo] = readLinks(['lo']);
  assert.equal(lo.ifindex, 1);
  assert.equal(lo.mac, '00:00:00:00:00:00');
  assert.equal(linkOf([lo], '127.0.0.53')?.name, 'lo');
  assert.throws(() => readLinks(['weir-none0']), /interface weir-none0 \(instance\.interfaces\) does not exist/);
});
