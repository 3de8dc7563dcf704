// Traffic for the forwarder and lab benches: 64-byte UDP frames (18-byte payload) from FLOWS
// source ports to DST:PORT (default 9, discard) with sendmmsg, bounded by COUNT packets and SECONDS.
// Build: cc -O2 -o flood forwarder-flood.c   Run: flood DST FLOWS COUNT SECONDS [PORT]
// Prints one JSON line: {"sent":N,"seconds":S}.
#define _GNU_SOURCE  // sendmmsg
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: flood DST FLOWS COUNT SECONDS [PORT]\n");
    return 2;
  }
  int flows = atoi(argv[2]);
  unsigned long long count = strtoull(argv[3], NULL, 10);
  double secs = atof(argv[4]);
  if (flows < 1 || flows > 256) return 2;
  int fds[256];
  struct sockaddr_in dst = {0};
  dst.sin_family = AF_INET;
  int port = argc == 6 ? atoi(argv[5]) : 9;
  if (port < 1 || port > 65535) return 2;
  dst.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) return 2;
  for (int i = 0; i < flows; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in src = {0};
    src.sin_family = AF_INET;
    src.sin_port = htons(10000 + i);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&src, sizeof src) || connect(fds[i], (struct sockaddr *)&dst, sizeof dst)) {
      perror("flood socket");
      return 1;
    }
  }
  static char payload[18] = "weir bench payload";
  static struct mmsghdr msgs[BATCH];
  static struct iovec iov = {payload, sizeof payload};
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  double start = now(), end = start + secs;
  unsigned long long sent = 0;
  for (unsigned long it = 0; sent < count; it++) {
    int f = (int)(it % (unsigned long)flows);
    if ((it & 15) == 0 && now() >= end) break;
    int r = sendmmsg(fds[f], msgs, BATCH, 0);
    if (r > 0) sent += r;
    else if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) {
      perror("flood sendmmsg");
      return 1;
    }
  }
  printf("{\"sent\":%llu,\"seconds\":%.3f}\n", sent, now() - start);
  return 0;
}
