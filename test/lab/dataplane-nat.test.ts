// End to end through the netns lab: nat VIPs (IPv4 and IPv6) through two weir instances.
import { modeSuite } from './dataplane-suite.js';

modeSuite('nat');
