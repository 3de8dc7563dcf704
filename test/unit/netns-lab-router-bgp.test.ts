// The lab's BGP mode as text: the generated bird.conf and weir `bgp:` section, and the parsers
// for `birdc show protocols` and `ip -j route` the lab and its tests poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { birdConfig, parseBirdProtocols, parseIpRoutes, routerBgpFiles, weirBgpYaml, ROUTER_AS, WEIR_AS } from '../../netns-lab/router-bgp.js';
import { HOSTS, hostsByRole } from '../../netns-lab/topology.js';

const router = HOSTS.find((h) => h.role === 'router')!;

test('bird.conf merges equal routes into kernel multipath routes and has a passive session per weir instance', () => {
  const conf = birdConfig(router, routerBgpFiles('/run/weir-lab'));
  const lbs = hostsByRole('weir');
  assert.ok(lbs.length >= 2, 'the lab has several weir instances');
  assert.equal(conf.match(/merge paths on;/g)?.length, 2, 'kernel4 and kernel6 both merge paths');
  assert.match(conf, /router id 198\.18\.1\.1;/);
  for (const lb of lbs) {
    assert.match(conf, new RegExp(`protocol bgp ${lb.ns.replace(/^weir-/, '')} \\{[^}]*neighbor ${lb.links[0].v4!.replace(/\./g, '\\.')} as ${WEIR_AS};[^}]*passive on;[^}]*hold time 3; keepalive time 1; connect retry time 2;`));
  }
});

test('the weir bgp section peers with the router fabric address with hold time 3 and a short shutdown wait', () => {
  const doc = YAML.parse(weirBgpYaml(router)) as { bgp: { enabled: boolean; local_as: number; hold_time: number; peers: { address: string; remote_as: number }[]; shutdown_wait_ms: number } };
  assert.deepEqual(doc.bgp, { enabled: true, local_as: WEIR_AS, hold_time: 3, peers: [{ address: '198.18.1.1', remote_as: ROUTER_AS }], shutdown_wait_ms: 300 });
});

test('birdc show protocols is read into a BGP state per protocol, other protocols ignored', () => {
  const text = `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     16:18:15.487  
kernel4    Kernel     master4    up     16:18:15.487  
lb1        BGP        ---        up     16:18:18.004  Established   
lb2        BGP        ---        start  16:18:17.957  Active        Socket: Connection refused
`;
  assert.deepEqual(parseBirdProtocols(text), { lb1: 'Established', lb2: 'Active' });
});

test('ip -j route is read into nexthop gateways per destination, for multipath and plain routes', () => {
  const json = JSON.stringify([
    { dst: '198.18.1.0/24', dev: 'fab0', protocol: 'kernel', scope: 'link', prefsrc: '198.18.1.1', flags: [] },
    { dst: '198.18.100.2', protocol: 'bird', metric: 32, flags: [], nexthops: [{ gateway: '198.18.1.11', dev: 'fab0', weight: 1, flags: [] }, { gateway: '198.18.1.12', dev: 'fab0', weight: 1, flags: [] }] },
    { dst: '198.18.100.3', gateway: '198.18.1.11', dev: 'fab0', protocol: 'bird', metric: 32, flags: [] },
  ]);
  assert.deepEqual(parseIpRoutes(json), { '198.18.1.0/24': [], '198.18.100.2': ['198.18.1.11', '198.18.1.12'], '198.18.100.3': ['198.18.1.11'] });
});
