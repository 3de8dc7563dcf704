// How big a config weir takes (issue 17). Each is a config error naming the number (config/checks.ts)
// and a line of README's limits table.

/** VIPs in one config (connection entries carry a 16-bit VIP id; the tables take 16,384 with room to spare). */
export const MAX_VIPS = 16384;
/** (VIP, backend) pairs in one config: the sum over the VIPs of their backend lists. */
export const MAX_VIP_BACKEND_PAIRS = 1_048_576;
