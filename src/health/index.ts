// Health checking: active probes, passive signals, rise/fall state, flap damping, HealthMonitor.
export * from './options.js';
export * from './probes.js';
export * from './damping.js';
export * from './backend-state.js';
export * from './monitor.js';
