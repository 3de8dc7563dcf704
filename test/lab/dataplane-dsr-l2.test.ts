// End to end through the netns lab: dsr-l2 VIPs (IPv4 and IPv6) through two weir instances;
// backends own the VIPs on lo and answer the client directly.
import { modeSuite } from './dataplane-suite.js';

modeSuite('dsr-l2');
