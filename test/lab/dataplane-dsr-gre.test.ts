// End to end through the netns lab: dsr-gre VIPs (IPv4 and IPv6) through two weir instances;
// each backend runs `weir decap` (this kernel has no GRE) and answers the client directly.
import { modeSuite } from './dataplane-suite.js';

modeSuite('dsr-gre');
