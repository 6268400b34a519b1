/* What the remote benchmarks (remote_batch_bench.c, remote_load_bench.c)
 * share: a monotonic clock and a node's request count read from its
 * /metrics (plain HTTP/1.0 over IPv4 loopback, no library). C99, header-only. */
#ifndef KVC_TESTS_REMOTE_BENCH_COMMON_H_
#define KVC_TESTS_REMOTE_BENCH_COMMON_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The node's count of `rpc` calls on its /metrics; -1 if unreadable. */
static long rpc_calls(const char *addr, const char *rpc) {
  static char buf[1 << 20];
  char host[64], req[256], pat[96];
  const char *colon = strrchr(addr, ':'), *p;
  struct sockaddr_in a;
  size_t len = 0;
  ssize_t n;
  int fd;
  if (!colon || (size_t)(colon - addr) >= sizeof host) return -1;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(colon + 1));
  inet_pton(AF_INET, host, &a.sin_addr);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  snprintf(req, sizeof req, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr);
  if (write(fd, req, strlen(req)) < 0) {
    close(fd);
    return -1;
  }
  while (len + 1 < sizeof buf && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
  buf[len] = 0;
  close(fd);
  snprintf(pat, sizeof pat, "kvc_request_duration_seconds_count{rpc=\"%s\"} ", rpc);
  p = strstr(buf, pat);
  return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

#endif /* KVC_TESTS_REMOTE_BENCH_COMMON_H_ */
