// DNS-shaped UDP load for the SNAT soak (scripts/bench/snat-soak.ts): every datagram a new flow.
//   udp-flows gen DST PORT SRC_BASE NSRC RATE SECONDS MAXPKTS
//     sends RATE datagrams per second (in 1 ms ticks) from a raw IP_HDRINCL socket, the source
//     cycling over NSRC addresses from SRC_BASE × client ports 1024..65023 (addresses first,
//     then the port), so a (source, port) pair comes back only every NSRC × 64000 / RATE s.
//     Stops after SECONDS or MAXPKTS; prints {"sent":N,"errors":N,"seconds":S}.
//   udp-flows echo PORT SECONDS ADDR...
//     answers every datagram to PORT on each ADDR from that address (one socket per address,
//     so the reply leaves from the address the query went to); prints {"echoed":N}.
// Build: cc -O2 -o udp-flows udp-flows.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PAYLOAD 32
#define PKT (20 + 8 + PAYLOAD)

static volatile sig_atomic_t stop;
static void on_sig(int sig) { (void)sig; stop = 1; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

// RFC 1071 sum over n bytes (n even), unfolded.
static uint32_t sum16(const uint8_t *p, int n, uint32_t s) {
  for (int i = 0; i < n; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
  return s;
}
static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static void build(uint8_t *b, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint64_t seq) {
  memset(b, 0, PKT);
  b[0] = 0x45;
  b[2] = PKT >> 8;
  b[3] = PKT & 0xff;
  b[6] = 0x40; // DF
  b[8] = 64;
  b[9] = IPPROTO_UDP;
  memcpy(b + 12, &src, 4);
  memcpy(b + 16, &dst, 4);
  uint16_t c = fold(sum16(b, 20, 0));
  b[10] = c >> 8;
  b[11] = c & 0xff;
  uint8_t *u = b + 20;
  u[0] = sport >> 8;
  u[1] = sport & 0xff;
  u[2] = dport >> 8;
  u[3] = dport & 0xff;
  u[4] = (8 + PAYLOAD) >> 8;
  u[5] = (8 + PAYLOAD) & 0xff;
  memcpy(u + 8, &seq, sizeof seq); // a query id of sorts
  memcpy(u + 16, "weir-soak-query.", 16);
  // UDP checksum over the pseudo-header (RFC 768)
  uint32_t s = sum16(b + 12, 8, 0) + IPPROTO_UDP + 8 + PAYLOAD;
  s = sum16(u, 8 + PAYLOAD, s);
  uint16_t uc = fold(s);
  if (uc == 0) uc = 0xffff;
  u[6] = uc >> 8;
  u[7] = uc & 0xff;
}

static int gen(int argc, char **argv) {
  if (argc < 9) return 2;
  struct in_addr dst, base;
  if (!inet_aton(argv[2], &dst) || !inet_aton(argv[4], &base)) return 2;
  int dport = atoi(argv[3]);
  long nsrc = atol(argv[5]);
  double rate = atof(argv[6]), secs = atof(argv[7]);
  long long maxp = atoll(argv[8]);
  if (nsrc < 1 || rate <= 0 || secs <= 0 || maxp < 1) return 2;
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) { perror("socket"); return 1; }
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
  static uint8_t bufs[BATCH][PKT];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = PKT;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
  }
  uint32_t b0 = ntohl(base.s_addr);
  long long sent = 0, errors = 0;
  uint64_t seq = 0;
  double t0 = now_s(), end = t0 + secs;
  struct timespec tick;
  clock_gettime(CLOCK_MONOTONIC, &tick);
  while (!stop && sent < maxp) {
    double t = now_s();
    if (t >= end) break;
    long long due = (long long)((t - t0) * rate);
    if (due > maxp) due = maxp;
    while (sent + errors < due && !stop) {
      int n = 0;
      while (n < BATCH && sent + errors + n < due) {
        uint64_t i = seq++;
        uint32_t src = htonl(b0 + (uint32_t)(i % (uint64_t)nsrc));
        uint16_t sport = (uint16_t)(1024 + (i / (uint64_t)nsrc) % 64000);
        build(bufs[n], src, dst.s_addr, sport, (uint16_t)dport, i);
        n++;
      }
      int r = sendmmsg(fd, msgs, n, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        errors += n; // counted, never retried: the rate stays the rate
      } else {
        sent += r;
        errors += n - r;
      }
    }
    tick.tv_nsec += 1000000;
    if (tick.tv_nsec >= 1000000000) { tick.tv_sec++; tick.tv_nsec -= 1000000000; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
  }
  printf("{\"sent\":%lld,\"errors\":%lld,\"seconds\":%.3f}\n", sent, errors, now_s() - t0);
  return 0;
}

static int echo(int argc, char **argv) {
  if (argc < 5) return 2;
  int port = atoi(argv[2]);
  double secs = atof(argv[3]);
  int n = argc - 4;
  if (n > 16) n = 16;
  struct pollfd pfd[16];
  for (int k = 0; k < n; k++) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (!inet_aton(argv[4 + k], &a.sin_addr)) return 2;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (bind(fd, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
    pfd[k].fd = fd;
    pfd[k].events = POLLIN;
  }
  printf("ready\n");
  fflush(stdout);
  static uint8_t bufs[BATCH][2048];
  struct sockaddr_in from[BATCH];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  long long echoed = 0;
  double end = now_s() + secs;
  while (!stop && now_s() < end) {
    if (poll(pfd, n, 100) <= 0) continue;
    for (int k = 0; k < n; k++) {
      if (!(pfd[k].revents & POLLIN)) continue;
      for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      int r = recvmmsg(pfd[k].fd, msgs, BATCH, MSG_DONTWAIT, NULL);
      if (r <= 0) continue;
      for (int i = 0; i < r; i++) iov[i].iov_len = msgs[i].msg_len;
      int s = sendmmsg(pfd[k].fd, msgs, r, 0);
      if (s > 0) echoed += s;
    }
  }
  printf("{\"echoed\":%lld}\n", echoed);
  return 0;
}

int main(int argc, char **argv) {
  struct sigaction sa = {.sa_handler = on_sig};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int r = 2;
  if (argc > 1 && !strcmp(argv[1], "gen")) r = gen(argc, argv);
  else if (argc > 1 && !strcmp(argv[1], "echo")) r = echo(argc, argv);
  if (r == 2)
    fprintf(stderr, "usage: udp-flows gen DST PORT SRC_BASE NSRC RATE SECONDS MAXPKTS\n"
                    "       udp-flows echo PORT SECONDS ADDR...\n");
  return r;
}
