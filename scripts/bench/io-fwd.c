// The receive designs of docs/io.md, each as a minimal C L2 forwarder between two interfaces
// (frames from A go out of B with B's MAC as source and PEER_B as destination, and back):
//   v3      TPACKET_V3 ring, 1 ms block-retire timer, sleep in poll()  (weir before this change)
//   v2      TPACKET_V2 ring, sleep in poll(): the kernel wakes the reader per frame
//   v2spin  TPACKET_V2 ring, never sleeps: watches both rings from user space (a busy core)
//   v2vnet  TPACKET_V2 ring with PACKET_VNET_HDR on both sockets: GSO super-frames (offloads on)
//           arrive whole with a virtio-net header and leave the same way (GRO/GSO-aware I/O)
// Build: cc -O2 -o io-fwd io-fwd.c   Run: io-fwd MODE IF_A IF_B PEER_A_MAC PEER_B_MAC SECONDS
// Prints "ready", then, at SECONDS or on SIGINT, one JSON line: {"forwarded","cpuSeconds"}.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_VNET_HDR
#define PACKET_VNET_HDR 15
#endif
#define VNET_HDR_LEN 10u /* struct virtio_net_hdr */

/* Ring geometry: 2 KiB frames, or with vnet headers frames that hold a 64 KiB super-frame. */
static unsigned BLOCK_SIZE = 1u << 18, BLOCK_NR = 8u, FRAME = 2048u;
static int vnet;

struct ring {
  int fd;
  int v3;
  uint8_t *mem;
  unsigned cur;       /* V2: frame; V3: block */
  uint8_t src[6];     /* this interface's MAC: source of what leaves it */
  uint8_t peer[6];    /* MAC of the host on the far end of this interface */
};

static volatile sig_atomic_t stop;
static void on_int(int sig) { (void)sig; stop = 1; }

static void die(const char *what) {
  fprintf(stderr, "io-fwd: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void parse_mac(const char *s, uint8_t *out) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) exit(2);
  for (int i = 0; i < 6; i++) out[i] = (uint8_t)v[i];
}

static void open_ring(struct ring *r, const char *ifname, int v3) {
  r->v3 = v3;
  r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
  if (r->fd < 0) die("socket");
  int ver = v3 ? TPACKET_V3 : TPACKET_V2, one = 1;
  if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver)) die("PACKET_VERSION");
  if (vnet && setsockopt(r->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one)) die("PACKET_VNET_HDR");
  struct tpacket_req3 req = {0};
  req.tp_block_size = BLOCK_SIZE;
  req.tp_block_nr = BLOCK_NR;
  req.tp_frame_size = FRAME;
  req.tp_frame_nr = BLOCK_SIZE / FRAME * BLOCK_NR;
  if (v3) req.tp_retire_blk_tov = 1;
  if (setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &req, v3 ? sizeof req : sizeof(struct tpacket_req))) die("PACKET_RX_RING");
  if (setsockopt(r->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one)) die("PACKET_IGNORE_OUTGOING");
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
  sll.sll_ifindex = (int)if_nametoindex(ifname);
  if (!sll.sll_ifindex) die(ifname);
  if (bind(r->fd, (struct sockaddr *)&sll, sizeof sll)) die("bind");
  struct ifreq ifr = {0};
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(r->fd, SIOCGIFHWADDR, &ifr)) die("SIOCGIFHWADDR");
  memcpy(r->src, ifr.ifr_hwaddr.sa_data, 6);
  r->mem = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
  if (r->mem == MAP_FAILED) die("mmap");
}

static uint8_t *v2_frame(struct ring *r, unsigned i) {
  unsigned per = BLOCK_SIZE / FRAME;
  return r->mem + (size_t)(i / per) * BLOCK_SIZE + (size_t)(i % per) * FRAME;
}

static int ready(struct ring *r) {
  if (r->v3) {
    struct tpacket_block_desc *b = (void *)(r->mem + (size_t)r->cur * BLOCK_SIZE);
    return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
  }
  struct tpacket2_hdr *h = (void *)v2_frame(r, r->cur);
  return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

static void out(struct ring *to, uint8_t *frame, unsigned len) {
  memcpy(frame, to->peer, 6);
  memcpy(frame + 6, to->src, 6);
  /* With vnet headers the kernel put the frame's virtio_net_hdr right before it; send both. */
  if (vnet) send(to->fd, frame - VNET_HDR_LEN, len + VNET_HDR_LEN, MSG_DONTWAIT);
  else send(to->fd, frame, len, MSG_DONTWAIT);
}

/* Forwards everything waiting in `from` out of `to`; returns frames forwarded. */
static unsigned drain(struct ring *from, struct ring *to) {
  unsigned n = 0;
  if (from->v3) {
    while (ready(from)) {
      struct tpacket_block_desc *b = (void *)(from->mem + (size_t)from->cur * BLOCK_SIZE);
      uint8_t *p = (uint8_t *)b + b->hdr.bh1.offset_to_first_pkt;
      for (unsigned i = 0; i < b->hdr.bh1.num_pkts; i++, n++) {
        struct tpacket3_hdr *h = (void *)p;
        out(to, p + h->tp_mac, h->tp_snaplen);
        p += h->tp_next_offset;
      }
      __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      from->cur = (from->cur + 1) % BLOCK_NR;
    }
    return n;
  }
  unsigned frames = BLOCK_SIZE / FRAME * BLOCK_NR;
  while (ready(from)) {
    uint8_t *f = v2_frame(from, from->cur);
    struct tpacket2_hdr *h = (void *)f;
    out(to, f + h->tp_mac, h->tp_snaplen);
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    from->cur = (from->cur + 1) % frames;
    n++;
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: io-fwd v3|v2|v2spin|v2vnet IF_A IF_B PEER_A_MAC PEER_B_MAC SECONDS\n");
    return 2;
  }
  int v3 = !strcmp(argv[1], "v3"), spin = !strcmp(argv[1], "v2spin");
  vnet = !strcmp(argv[1], "v2vnet");
  if (vnet) {
    FRAME = 69632u;      /* a 64 KiB super-frame plus the headers */
    BLOCK_SIZE = 278528u; /* four frames, a whole number of pages */
    BLOCK_NR = 16u;
  }
  struct ring a, b;
  open_ring(&a, argv[2], v3);
  open_ring(&b, argv[3], v3);
  parse_mac(argv[4], a.peer);
  parse_mac(argv[5], b.peer);
  double end = now() + atof(argv[6]);
  struct sigaction sa = {.sa_handler = on_int};
  sigaction(SIGINT, &sa, NULL);
  printf("ready\n");
  fflush(stdout);
  unsigned long long fwd = 0;
  while (!stop && now() < end) {
    unsigned n = drain(&a, &b) + drain(&b, &a);
    fwd += n;
    if (n == 0 && !spin) {
      struct pollfd p[2] = {{a.fd, POLLIN, 0}, {b.fd, POLLIN, 0}};
      poll(p, 2, 100);
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"forwarded\":%llu,\"cpuSeconds\":%.3f}\n", fwd,
         ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  return 0;
}
