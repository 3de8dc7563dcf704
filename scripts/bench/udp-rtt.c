// UDP round trips for the I/O latency bench: `udp-rtt echo PORT SECONDS` answers every
// datagram to its sender; `udp-rtt ping DST PORT COUNT GAP_US SECONDS` sends COUNT datagrams,
// one at a time, each after the answer to the last (or a 100 ms timeout) plus GAP_US of quiet,
// and prints one JSON line: {"sent","answered","p50","p90","p99","max"} (round trip, µs).
// Bounded by COUNT and SECONDS. Build: cc -O2 -o udp-rtt udp-rtt.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static volatile sig_atomic_t stop;
static void on_int(int sig) { (void)sig; stop = 1; }

static int echo(int port, double secs) {
  struct sigaction sa = {.sa_handler = on_int};
  sigaction(SIGINT, &sa, NULL);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
  printf("ready\n");
  fflush(stdout);
  double end = now_us() + secs * 1e6;
  char buf[2048];
  while (!stop && now_us() < end) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n > 0) sendto(fd, buf, n, 0, (struct sockaddr *)&from, fl);
  }
  return 0;
}

static int ping(const char *dst, int port, int count, int gap_us, double secs) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, dst, &a.sin_addr) != 1) return 2;
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
  double *rtt = calloc(count, sizeof(double));
  int sent = 0, got = 0;
  double end = now_us() + secs * 1e6;
  char buf[64] = "weir-rtt";
  for (int i = 0; i < count && now_us() < end; i++) {
    memcpy(buf + 8, &i, sizeof i);
    double t0 = now_us();
    if (send(fd, buf, 32, 0) != 32) continue;
    sent++;
    for (;;) {
      struct pollfd p = {fd, POLLIN, 0};
      int left = 100 - (int)((now_us() - t0) / 1000);
      if (left <= 0 || poll(&p, 1, left) <= 0) break;
      char r[64];
      ssize_t n = recv(fd, r, sizeof r, 0);
      int id;
      memcpy(&id, r + 8, sizeof id);
      if (n == 32 && id == i) {
        rtt[got++] = now_us() - t0;
        break;
      }
    }
    if (gap_us > 0) usleep(gap_us);
  }
  qsort(rtt, got, sizeof(double), cmp);
  double p = got ? rtt[got / 2] : 0, p90 = got ? rtt[got * 9 / 10] : 0, p99 = got ? rtt[got * 99 / 100] : 0;
  printf("{\"sent\":%d,\"answered\":%d,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f}\n", sent, got, p, p90, p99,
         got ? rtt[got - 1] : 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "echo")) return echo(atoi(argv[2]), atof(argv[3]));
  if (argc == 7 && !strcmp(argv[1], "ping")) return ping(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]));
  fprintf(stderr, "usage: udp-rtt echo PORT SECONDS | udp-rtt ping DST PORT COUNT GAP_US SECONDS\n");
  return 2;
}
