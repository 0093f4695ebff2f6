/* STUN binding load generator for scripts/bench/stun_server.
 *
 *   stun-load HOST PORT SECONDS [SOCKETS] [WINDOW]
 *
 * Keeps WINDOW requests outstanding on each of SOCKETS UDP sockets (closed loop: a response
 * frees a slot; a slot whose request got no answer in 200 ms is freed too), for SECONDS, and
 * prints "responses/s sent lost". Requests are RFC 8489 Binding requests with a SOFTWARE
 * attribute and a distinct transaction ID each. Bounded in time and in packets in flight. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 64
#define MAX_WINDOW 64
#define BATCH 32

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t make_request(unsigned char* buf, uint32_t sock, uint32_t seq) {
    static const char software[] = "stunload"; /* 8 bytes: RFC 3489 servers want a multiple of 4 */
    const size_t sw = sizeof software - 1, sw_padded = (sw + 3) & ~(size_t)3;
    buf[0] = 0x00, buf[1] = 0x01;
    buf[2] = 0, buf[3] = (unsigned char)(4 + sw_padded);
    const uint32_t cookie = htonl(0x2112A442), s = htonl(sock), q = htonl(seq);
    memcpy(buf + 4, &cookie, 4);
    memset(buf + 8, 0x5a, 4);
    memcpy(buf + 12, &s, 4);
    memcpy(buf + 16, &q, 4);
    buf[20] = 0x80, buf[21] = 0x22, buf[22] = 0, buf[23] = (unsigned char)sw;
    memset(buf + 24, 0, sw_padded);
    memcpy(buf + 24, software, sw);
    return 24 + sw_padded;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS [SOCKETS] [WINDOW]\n", argv[0]);
        return 2;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
    const double seconds = atof(argv[3]);
    int nsock = argc > 4 ? atoi(argv[4]) : 16, window = argc > 5 ? atoi(argv[5]) : 8;
    if (nsock < 1 || nsock > MAX_SOCKETS || window < 1 || window > MAX_WINDOW || seconds <= 0 ||
        seconds > 120)
        return 2;
    int fds[MAX_SOCKETS];
    struct pollfd pfds[MAX_SOCKETS];
    double sent_at[MAX_SOCKETS][MAX_WINDOW];
    uint32_t seq[MAX_SOCKETS][MAX_WINDOW];
    uint32_t next_seq = 1;
    for (int i = 0; i < nsock; ++i) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr*)&to, sizeof to) != 0) {
            perror("socket");
            return 1;
        }
        pfds[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        for (int w = 0; w < window; ++w) sent_at[i][w] = 0, seq[i][w] = 0;
    }
    unsigned long long sent = 0, received = 0, lost = 0;
    unsigned char buf[64], rx[BATCH][128];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    const double start = now_s(), end = start + seconds;
    double t = start;
    while (t < end) {
        /* Fill every free or expired slot. */
        for (int i = 0; i < nsock; ++i)
            for (int w = 0; w < window; ++w) {
                if (seq[i][w] && t - sent_at[i][w] < 0.2) continue;
                if (seq[i][w]) ++lost;
                seq[i][w] = next_seq++;
                size_t n = make_request(buf, (uint32_t)(i * MAX_WINDOW + w), seq[i][w]);
                if (send(fds[i], buf, n, 0) == (ssize_t)n) ++sent;
                sent_at[i][w] = t;
            }
        if (poll(pfds, (nfds_t)nsock, 10) <= 0) {
            t = now_s();
            continue;
        }
        for (int i = 0; i < nsock; ++i) {
            if (!(pfds[i].revents & POLLIN)) continue;
            for (int k = 0; k < BATCH; ++k) {
                iov[k] = (struct iovec){.iov_base = rx[k], .iov_len = sizeof rx[k]};
                msgs[k] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[k], .msg_iovlen = 1}};
            }
            int got = recvmmsg(fds[i], msgs, BATCH, MSG_DONTWAIT, NULL);
            for (int k = 0; k < got; ++k) {
                if (msgs[k].msg_len < 20 || rx[k][0] != 0x01 || rx[k][1] != 0x01) continue;
                uint32_t slot, q;
                memcpy(&slot, rx[k] + 12, 4);
                memcpy(&q, rx[k] + 16, 4);
                slot = ntohl(slot), q = ntohl(q);
                int w = (int)(slot % MAX_WINDOW);
                if ((int)(slot / MAX_WINDOW) != i || w >= window || seq[i][w] != q) continue;
                seq[i][w] = 0;
                ++received;
            }
        }
        t = now_s();
    }
    const double elapsed = now_s() - start;
    printf("%.0f %llu %llu\n", (double)received / elapsed, sent, lost);
    return 0;
}
