// Public face of src/decap: userspace GRE decapsulation for dsr-gre backends whose kernel has
// no GRE (`weir decap`), the host setup it needs, and its counters.
export * from './decapsulator.js';
export { DecapRunner, openDecapPorts, hostAddresses } from './runner.js';
export type { DecapPorts, DecapRunnerOptions } from './runner.js';
export { applyChanges, formatChanges, missingHostChanges, readSysctl, tunCommands } from './host-setup.js';
export type { HostChange } from './host-setup.js';
export { runDecap } from './run.js';
export type { DecapOptions } from './run.js';
