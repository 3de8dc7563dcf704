// Open-loop TCP connect latency for the lab bench: starts connections at a fixed RATE (not when
// earlier ones finish, so a slow server cannot slow the clock), each non-blocking, watched with
// epoll. Connect time = connect() until the socket is writable (SYN → SYN-ACK as the client
// sees it); then it sends one HTTP GET, reads the answer to EOF and closes.
// Bounded by COUNT connections and SECONDS; a connection older than 3 s is an error.
// Build: cc -O2 -o connect-latency connect-latency.c
// Run:   connect-latency DST PORT RATE COUNT SECONDS
// Prints one JSON line: {"count","errors","timeouts","unstarted","seconds","p50_us","p99_us",
// "max_us","total_p50_us","total_p99_us"} (total = connect() until the answer's EOF).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPEN 4096 // in flight at once; well under the 20000 open files allowed here
#define CONN_TIMEOUT 3.0

struct conn {
  int fd;
  int connected;
  double t0;
  double connect_us;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p) {
  if (n == 0) return -1;
  long i = (long)(p * (n - 1) + 0.5);
  return v[i];
}

static struct conn conns[MAX_OPEN];
static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: connect-latency DST PORT RATE COUNT SECONDS\n");
    return 2;
  }
  struct sockaddr_in dst = {0};
  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) return 2;
  double rate = atof(argv[3]);
  long count = atol(argv[4]);
  double secs = atof(argv[5]);
  if (rate <= 0 || count < 1 || secs <= 0) return 2;

  double *lat = calloc((size_t)count, sizeof *lat);
  double *total = calloc((size_t)count, sizeof *total);
  int ep = epoll_create1(0);
  if (!lat || !total || ep < 0) return 1;
  for (int i = 0; i < MAX_OPEN; i++) conns[i].fd = -1;

  long started = 0, done = 0, errors = 0, timeouts = 0, unstarted = 0, open = 0;
  double start = now(), stop_starting = start + secs, hard_end = stop_starting + CONN_TIMEOUT + 0.5;
  double interval = 1.0 / rate;
  char buf[4096];
  int next_slot = 0;
  double last_scan = start;

  for (;;) {
    double t = now();
    // Start every connection that is due by now (catching up after a late wake-up).
    while (started + unstarted < count && t < stop_starting && start + (started + unstarted) * interval <= t) {
      if (open >= MAX_OPEN) { unstarted++; continue; } // the server is that far behind: count it, don't queue it
      int slot = -1;
      for (int k = 0; k < MAX_OPEN; k++) {
        int s = (next_slot + k) % MAX_OPEN;
        if (conns[s].fd < 0) { slot = s; break; }
      }
      next_slot = (slot + 1) % MAX_OPEN;
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0) { errors++; started++; continue; }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conns[slot].fd = fd;
      conns[slot].connected = 0;
      conns[slot].t0 = now();
      started++;
      int r = connect(fd, (struct sockaddr *)&dst, sizeof dst);
      if (r < 0 && errno != EINPROGRESS) {
        close(fd);
        conns[slot].fd = -1;
        errors++;
        continue;
      }
      struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)slot};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      open++;
    }
    if ((started + unstarted >= count || t >= stop_starting) && open == 0) break;
    if (t >= hard_end) break;

    // Sleep until the next start is due (or 5 ms, to check timeouts).
    double due = start + (started + unstarted) * interval;
    int wait_ms = 5;
    if (started + unstarted < count && t < stop_starting) {
      double d = (due - t) * 1000;
      wait_ms = d <= 0 ? 0 : d < 5 ? (int)d : 5;
    }
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, wait_ms);
    double tn = now();
    for (int i = 0; i < n; i++) {
      struct conn *c = &conns[evs[i].data.u32];
      if (c->fd < 0) continue;
      int fail = 0, finished = 0;
      if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (evs[i].events & (EPOLLERR | EPOLLHUP))) fail = 1;
        else if (evs[i].events & EPOLLOUT) {
          c->connected = 1;
          c->connect_us = (tn - c->t0) * 1e6;
          if (write(c->fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) fail = 1;
          struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = evs[i].data.u32};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      } else {
        for (;;) {
          ssize_t r = read(c->fd, buf, sizeof buf);
          if (r > 0) continue;
          if (r == 0) finished = 1;
          else if (errno != EAGAIN) fail = 1;
          break;
        }
      }
      if (fail || finished) {
        if (finished) {
          lat[done] = c->connect_us;
          total[done] = (tn - c->t0) * 1e6;
          done++;
        }
        else errors++;
        close(c->fd);
        c->fd = -1;
        open--;
      }
    }
    // Connections older than CONN_TIMEOUT are errors (a lost SYN would wait 1 s and retry).
    if (tn - last_scan > 0.05) {
      last_scan = tn;
      for (int s = 0; s < MAX_OPEN; s++) {
        if (conns[s].fd >= 0 && tn - conns[s].t0 > CONN_TIMEOUT) {
          close(conns[s].fd);
          conns[s].fd = -1;
          open--;
          timeouts++;
        }
      }
    }
  }
  for (int s = 0; s < MAX_OPEN; s++) if (conns[s].fd >= 0) { close(conns[s].fd); timeouts++; }
  double elapsed = now() - start;
  // Latencies of finished connections only: one that failed after connecting has no answer.
  qsort(lat, (size_t)done, sizeof *lat, cmp);
  qsort(total, (size_t)done, sizeof *total, cmp);
  printf("{\"count\":%ld,\"errors\":%ld,\"timeouts\":%ld,\"unstarted\":%ld,\"seconds\":%.3f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"total_p50_us\":%.1f,\"total_p99_us\":%.1f}\n",
         done, errors, timeouts, unstarted, elapsed, pct(lat, done, 0.5), pct(lat, done, 0.99),
         done ? lat[done - 1] : -1.0, pct(total, done, 0.5), pct(total, done, 0.99));
  return 0;
}
