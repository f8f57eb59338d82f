/*
 * cepoll: the bench's physical limit. A minimal HTTP/1.1 answerer on epoll:
 * one thread per server core, each with its own SO_REUSEPORT listener and
 * its own epoll set (level-triggered), no parsing. It counts "\r\n\r\n" in
 * what it reads (the end of a request head; bodies are not skipped, so it
 * only serves GET) and writes one fixed answer per count, all of a read's
 * answers in one write(2). A read whose bytes hold "Connection: close"
 * (any case) gets answers that say so and the connection is closed after
 * them, which is what the churn scenario sends. Answers that do not fit in
 * the socket are kept and the connection is not read again until they are
 * written (back-pressure).
 *
 * It is what a server costs when it does nothing but the system calls:
 * every other server's CPU per request is compared with it.
 *
 * Build: gcc -O2 -Wall -Wextra -o cepoll cepoll.c -lpthread
 * Run:   cepoll -addr 127.0.0.1:8080 [-t threads]  (threads: the CPUs in
 *        its affinity mask by default)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY "Hello, World!"
#define READ_SIZE 65536
#define MAX_EVENTS 256

/* One answer: a fixed head up to the Date value, the Date (29 bytes,
 * refreshed once a second per thread), and a fixed tail. */
static const char head_text[] = "HTTP/1.1 200 OK\r\nServer: cepoll\r\nDate: ";
static const char tail_keep[] = "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" BODY;
static const char tail_close[] = "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n" BODY;
#define DATE_LEN 29

struct conn {
	int fd;
	int matched;   /* bytes of "\r\n\r\n" matched at the end of the last read */
	int closing;   /* close once out is written */
	char *out;     /* answers not yet written */
	size_t out_len, out_off, out_cap;
};

struct worker {
	int id;
	struct sockaddr_in addr;
	time_t date_at;
	char date[DATE_LEN + 1];
	char *answer_keep, *answer_close;
	size_t keep_len, close_len;
	char *wbuf;
	size_t wcap;
};

static struct conn **conns; /* by fd; each fd belongs to one thread */
static long max_fds;

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void refresh_date(struct worker *w) {
	time_t now = time(NULL);
	if (now == w->date_at)
		return;
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	w->date_at = now;
	memcpy(w->answer_keep + sizeof head_text - 1, w->date, DATE_LEN);
	memcpy(w->answer_close + sizeof head_text - 1, w->date, DATE_LEN);
}

static char *build_answer(const char *tail, size_t tail_len, size_t *len) {
	*len = sizeof head_text - 1 + DATE_LEN + tail_len;
	char *a = malloc(*len);
	if (!a)
		die("malloc");
	memcpy(a, head_text, sizeof head_text - 1);
	memset(a + sizeof head_text - 1, ' ', DATE_LEN);
	memcpy(a + sizeof head_text - 1 + DATE_LEN, tail, tail_len);
	return a;
}

static int listener(const struct sockaddr_in *addr) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("setsockopt");
	if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

static void close_conn(int ep, struct conn *c) {
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conns[c->fd] = NULL;
	free(c->out);
	free(c);
}

/* flush writes what is pending; returns -1 when the connection is gone,
 * 1 when bytes are still pending, 0 when all is written. */
static int flush(int ep, struct conn *c) {
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 1;
			close_conn(ep, c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	if (c->closing) {
		close_conn(ep, c);
		return -1;
	}
	return 0;
}

static void keep_pending(struct conn *c, const char *p, size_t n) {
	if (c->out_len - c->out_off + n > c->out_cap) {
		size_t cap = c->out_len - c->out_off + n;
		char *b = malloc(cap);
		if (!b)
			die("malloc");
		memcpy(b, c->out + c->out_off, c->out_len - c->out_off);
		free(c->out);
		c->out = b;
		c->out_cap = cap;
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

static void want_write(int ep, struct conn *c, int on) {
	struct epoll_event ev = {.events = on ? EPOLLOUT : EPOLLIN, .data.fd = c->fd};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* count_heads counts the "\r\n\r\n" in b, carrying a partial match over
 * from the previous read in *matched. */
static long count_heads(const char *b, size_t n, int *matched) {
	static const char end[] = "\r\n\r\n";
	long count = 0;
	int m = *matched;
	for (size_t i = 0; i < n; i++) {
		char ch = b[i];
		if (ch == end[m]) {
			if (++m == 4) {
				count++;
				m = 0;
			}
		} else {
			m = ch == '\r' ? 1 : 0;
		}
	}
	*matched = m;
	return count;
}

static int says_close(const char *b, size_t n) {
	static const char token[] = "connection: close";
	size_t k = sizeof token - 1;
	for (size_t i = 0; i + k <= n; i++)
		if ((b[i] | 0x20) == 'c' && strncasecmp(b + i, token, k) == 0)
			return 1;
	return 0;
}

static void on_readable(int ep, struct worker *w, struct conn *c, char *rbuf) {
	ssize_t n = read(c->fd, rbuf, READ_SIZE);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		close_conn(ep, c);
		return;
	}
	long heads = count_heads(rbuf, (size_t)n, &c->matched);
	if (heads == 0)
		return;
	if (says_close(rbuf, (size_t)n))
		c->closing = 1;
	refresh_date(w);
	const char *a = c->closing ? w->answer_close : w->answer_keep;
	size_t alen = c->closing ? w->close_len : w->keep_len;
	size_t need = (size_t)heads * alen;
	if (need > w->wcap) {
		free(w->wbuf);
		w->wcap = need;
		w->wbuf = malloc(need);
		if (!w->wbuf)
			die("malloc");
	}
	for (long i = 0; i < heads; i++)
		memcpy(w->wbuf + (size_t)i * alen, a, alen);
	size_t off = 0;
	while (off < need) {
		ssize_t m = write(c->fd, w->wbuf + off, need - off);
		if (m < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			close_conn(ep, c);
			return;
		}
		off += (size_t)m;
	}
	if (off < need) {
		keep_pending(c, w->wbuf + off, need - off);
		want_write(ep, c, 1);
		return;
	}
	if (c->closing)
		close_conn(ep, c);
}

static void accept_all(int ep, int lfd) {
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or out of descriptors: try on the next event */
		}
		if (fd >= max_fds) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (!c)
			die("calloc");
		c->fd = fd;
		conns[fd] = c;
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			conns[fd] = NULL;
			free(c);
			close(fd);
		}
	}
}

static void *serve(void *arg) {
	struct worker *w = arg;
	int lfd = listener(&w->addr);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	char *rbuf = malloc(READ_SIZE);
	if (!rbuf)
		die("malloc");
	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(ep, events, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == lfd) {
				accept_all(ep, lfd);
				continue;
			}
			struct conn *c = conns[fd];
			if (!c)
				continue;
			if (events[i].events & EPOLLOUT) {
				int r = flush(ep, c);
				if (r == 0)
					want_write(ep, c, 0);
				continue;
			}
			if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(ep, w, c, rbuf);
		}
	}
	return NULL;
}

static int parse_addr(const char *s, struct sockaddr_in *a) {
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return -1;
	char host[64];
	size_t hl = (size_t)(colon - s);
	if (hl >= sizeof host)
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_port = htons((unsigned short)atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
	const char *addr = "127.0.0.1:8080";
	int threads = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-addr") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [-addr host:port] [-t threads]\n", argv[0]);
			return 2;
		}
	}
	if (threads <= 0) {
		cpu_set_t set;
		threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
	}
	struct sockaddr_in a;
	if (parse_addr(addr, &a) < 0) {
		fprintf(stderr, "cepoll: bad address %s (want IPv4 host:port)\n", addr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 1 << 20;
	conns = calloc((size_t)max_fds, sizeof *conns);
	if (!conns)
		die("calloc");
	pthread_t *tids = calloc((size_t)threads, sizeof *tids);
	if (!tids)
		die("calloc");
	for (int i = 0; i < threads; i++) {
		struct worker *w = calloc(1, sizeof *w);
		if (!w)
			die("calloc");
		w->id = i;
		w->addr = a;
		w->answer_keep = build_answer(tail_keep, sizeof tail_keep - 1, &w->keep_len);
		w->answer_close = build_answer(tail_close, sizeof tail_close - 1, &w->close_len);
		refresh_date(w);
		if (pthread_create(&tids[i], NULL, serve, w) != 0)
			die("pthread_create");
	}
	fprintf(stderr, "cepoll listening on %s with %d thread(s)\n", addr, threads);
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
