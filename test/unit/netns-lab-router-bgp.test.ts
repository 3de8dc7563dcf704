// The lab's BGP mode as text: the generated bird.conf, FRR configs and weir `bgp:` section, and
// the parsers for `birdc show protocols`, FRR's `show bgp summary json` and `ip -j route`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import {
  birdConfig,
  frrConfig,
  frrFiles,
  labBgpOptions,
  labMd5Password,
  parseBirdProtocols,
  parseFrrSummary,
  parseIpRoutes,
  routerBgpFiles,
  weirBgpYaml,
  LAB_RESTART_TIME,
  ROUTER_AS,
  WEIR_AS,
} from '../../netns-lab/router-bgp.js';
import { HOSTS, hostsByRole } from '../../netns-lab/topology.js';

const router = HOSTS.find((h) => h.role === 'router')!;

test('bird.conf merges equal routes into kernel multipath routes and has a passive session per weir instance', () => {
  const conf = birdConfig(router, routerBgpFiles('/run/weir-lab'));
  const lbs = hostsByRole('weir');
  assert.ok(lbs.length >= 2, 'the lab has several weir instances');
  assert.equal(conf.match(/merge paths on;/g)?.length, 2, 'kernel4 and kernel6 both merge paths');
  assert.match(conf, /router id 198\.18\.1\.1;/);
  for (const lb of lbs) {
    assert.match(
      conf,
      new RegExp(
        `protocol bgp ${lb.ns.replace(/^weir-/, '')} \\{[^}]*neighbor ${lb.links[0].v4!.replace(/\./g, '\\.')} as ${WEIR_AS};[^}]*passive on;[^}]*hold time 3; keepalive time 1; connect retry time 2;`,
      ),
    );
  }
});

test('the weir bgp section peers with the router fabric address with hold time 3 and a short shutdown wait', () => {
  const doc = YAML.parse(weirBgpYaml(router)) as {
    bgp: {
      enabled: boolean;
      local_as: number;
      hold_time: number;
      peers: { address: string; remote_as: number }[];
      shutdown_wait_ms: number;
    };
  };
  assert.deepEqual(doc.bgp, {
    enabled: true,
    local_as: WEIR_AS,
    hold_time: 3,
    peers: [{ address: '198.18.1.1', remote_as: ROUTER_AS }],
    shutdown_wait_ms: 300,
  });
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
    {
      dst: '198.18.100.2',
      protocol: 'bird',
      metric: 32,
      flags: [],
      nexthops: [
        { gateway: '198.18.1.11', dev: 'fab0', weight: 1, flags: [] },
        { gateway: '198.18.1.12', dev: 'fab0', weight: 1, flags: [] },
      ],
    },
    { dst: '198.18.100.3', gateway: '198.18.1.11', dev: 'fab0', protocol: 'bird', metric: 32, flags: [] },
  ]);
  assert.deepEqual(parseIpRoutes(json), {
    '198.18.1.0/24': [],
    '198.18.100.2': ['198.18.1.11', '198.18.1.12'],
    '198.18.100.3': ['198.18.1.11'],
  });
});

test('lab up --bgp=frr writes one config per FRR daemon: a passive peer group with ECMP, and BFD, TCP-MD5 and graceful restart on request', () => {
  const opts = labBgpOptions({ router: 'frr', bfd: true, md5: true, gracefulRestart: true });
  assert.equal(opts.holdTime, 9, 'FRR labs run a 9 s hold time, so BFD has something to beat');
  const c = frrConfig(router, frrFiles('/run/weir-lab-frr'), opts);
  assert.doesNotMatch(c.bgpd, /^bfd$/m, 'bgpd stops parsing at a section it does not know');
  assert.match(
    c.bgpd,
    /router bgp 65000\n bgp router-id 198\.18\.1\.1\n no bgp ebgp-requires-policy\n bgp graceful-restart\n/,
  );
  assert.match(
    c.bgpd,
    / neighbor weir remote-as 65010\n neighbor weir passive\n neighbor weir timers 3 9\n neighbor weir bfd\n neighbor weir bfd profile weir\n/,
  );
  for (const lb of hostsByRole('weir')) {
    assert.match(
      c.bgpd,
      new RegExp(
        ` neighbor ${lb.links[0].v4!.replace(/\./g, '\\.')} peer-group weir\n neighbor ${lb.links[0].v4!.replace(/\./g, '\\.')} password ${labMd5Password(lb)}\n`,
      ),
    );
  }
  assert.equal(c.bgpd.match(/maximum-paths 8/g)?.length, 2, 'ECMP for IPv4 and IPv6');
  assert.match(c.bgpd, /address-family ipv6 unicast\n {2}neighbor weir activate/);
  assert.match(
    c.bfdd,
    /bfd\n profile weir\n {2}detect-multiplier 3\n {2}receive-interval 100\n {2}transmit-interval 100\n/,
  );
  const bare = frrConfig(router, frrFiles('/x'), labBgpOptions({ router: 'frr' }));
  assert.doesNotMatch(bare.bgpd, /password|bfd|graceful/);
  assert.doesNotMatch(bare.bfdd, /profile/);
});

test('the weir bgp section and bird.conf carry BFD, the password file and graceful restart on request', () => {
  const opts = labBgpOptions({ bfd: true, md5: true, gracefulRestart: true });
  const doc = YAML.parse(weirBgpYaml(router, opts, '/run/weir-lab/lb1.bgp-password')) as {
    bgp: { peers: object[]; graceful_restart: object };
  };
  assert.deepEqual(doc.bgp.peers[0], {
    address: '198.18.1.1',
    remote_as: ROUTER_AS,
    password_file: '/run/weir-lab/lb1.bgp-password',
    bfd: { enabled: true, min_tx_ms: 100, min_rx_ms: 100, multiplier: 3 },
  });
  assert.deepEqual(doc.bgp.graceful_restart, { enabled: true, restart_time: LAB_RESTART_TIME });
  const bird = birdConfig(router, routerBgpFiles('/run/weir-lab'), opts);
  assert.match(
    bird,
    /protocol bfd \{ interface "fab0" \{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; \}; \}/,
  );
  assert.match(bird, /bfd on;\n {2}password "weir-lab-lb1-secret";\n {2}graceful restart aware;/);
});

test('show bgp summary json is read into a state per neighbour, either family', () => {
  const json = JSON.stringify({
    ipv4Unicast: { peers: { '198.18.1.11': { state: 'Established' }, '198.18.1.12': { state: 'Active' } } },
    ipv6Unicast: { peers: { '198.18.1.11': { state: 'Established' } } },
  });
  assert.deepEqual(parseFrrSummary(json), { '198.18.1.11': 'Established', '198.18.1.12': 'Active' });
  assert.deepEqual(parseFrrSummary(''), {});
  assert.deepEqual(parseFrrSummary('% no bgp'), {});
});
