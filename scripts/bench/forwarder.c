// Baseline for the forwarder bench: the same loop as the TypeScript forwarder in plain C.
// TPACKET_V3 ring on <in> (ETH_P_ALL) -> rewrite MACs in place -> sendmmsg on <out>.
// Build: cc -O2 -o forwarder forwarder.c   Run: forwarder IN OUT DSTMAC SRCMAC SECONDS
// Prints "ready", then one JSON line: {"received","sent","dropped","ringDrops","cpuSeconds"}.
#define _GNU_SOURCE  // sendmmsg
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif

#define BLOCK_SIZE (1u << 18) /* same ring as the addon's defaults: 8 x 256 KiB, 1 ms retire */
#define BLOCK_NR 8u
#define BATCH 256

static void die(const char *what) {
  fprintf(stderr, "forwarder: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void parse_mac(const char *s, uint8_t *out) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) {
    fprintf(stderr, "forwarder: bad MAC %s\n", s);
    exit(2);
  }
  for (int i = 0; i < 6; i++) out[i] = (uint8_t)v[i];
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int open_sock(const char *ifname, int rx) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) die("socket");
  int v3 = TPACKET_V3, one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v3, sizeof v3)) die("PACKET_VERSION");
  if (rx) {
    struct tpacket_req3 req = {0};
    req.tp_block_size = BLOCK_SIZE;
    req.tp_block_nr = BLOCK_NR;
    req.tp_frame_size = 2048;
    req.tp_frame_nr = BLOCK_SIZE * BLOCK_NR / 2048;
    req.tp_retire_blk_tov = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) die("PACKET_RX_RING");
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one)) die("PACKET_IGNORE_OUTGOING");
  }
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = rx ? htons(ETH_P_ALL) : 0;
  sll.sll_ifindex = (int)if_nametoindex(ifname);
  if (!sll.sll_ifindex) die(ifname);
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll)) die("bind");
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: forwarder IN OUT DSTMAC SRCMAC SECONDS\n");
    return 2;
  }
  uint8_t macs[12];
  parse_mac(argv[3], macs);
  parse_mac(argv[4], macs + 6);
  double end = now() + atof(argv[5]);
  int rx = open_sock(argv[1], 1), tx = open_sock(argv[2], 0);
  uint8_t *ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rx, 0);
  if (ring == MAP_FAILED) die("mmap");
  printf("ready\n");
  fflush(stdout);
  double cpu0 = cpu_seconds();

  static struct mmsghdr msgs[BATCH];
  static struct iovec iovs[BATCH];
  uint64_t received = 0, sent = 0, dropped = 0;
  unsigned blk_idx = 0;
  int n = 0;
  while (now() < end) {
    struct tpacket_block_desc *blk = (void *)(ring + (size_t)blk_idx * BLOCK_SIZE);
    if (!(__atomic_load_n(&blk->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
      struct pollfd p = {rx, POLLIN, 0};
      poll(&p, 1, 100);
      continue;
    }
    uint8_t *pkt = (uint8_t *)blk + blk->hdr.bh1.offset_to_first_pkt;
    for (unsigned i = 0; i < blk->hdr.bh1.num_pkts; i++) {
      struct tpacket3_hdr *h = (void *)pkt;
      uint8_t *frame = pkt + h->tp_mac;
      memcpy(frame, macs, 12);  // rewrite destination and source MAC
      iovs[n].iov_base = frame;
      iovs[n].iov_len = h->tp_snaplen;
      memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
      msgs[n].msg_hdr.msg_iov = &iovs[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      n++;
      received++;
      if (n == BATCH || i + 1 == blk->hdr.bh1.num_pkts) {
        int r = sendmmsg(tx, msgs, n, MSG_DONTWAIT);
        if (r < 0) r = 0;
        sent += r;
        dropped += n - r;
        n = 0;
      }
      pkt += h->tp_next_offset;
    }
    __atomic_store_n(&blk->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    blk_idx = (blk_idx + 1) % BLOCK_NR;
  }
  struct tpacket_stats_v3 st = {0};
  socklen_t len = sizeof st;
  getsockopt(rx, SOL_PACKET, PACKET_STATISTICS, &st, &len);
  printf("{\"received\":%llu,\"sent\":%llu,\"dropped\":%llu,\"ringDrops\":%u,\"cpuSeconds\":%.3f}\n",
         (unsigned long long)received, (unsigned long long)sent, (unsigned long long)dropped, st.tp_drops,
         cpu_seconds() - cpu0);
  return 0;
}
