/*
 * ipc-bench-c: the C twin of ipc-bench. For one mechanism and one test it makes the same
 * system calls as the Rust side (the modules under src/mech/), in the same order, so that the ratio
 * Rust/C measures Rust's overhead and nothing else.
 *
 * Usage (ipc-bench runs it; by hand only for debugging):
 *   ipc-bench-c MECH TEST SIZE CPU_PING CPU_PONG BUDGET_NS WARMUP_NS MAX_SAMPLES NAME_A NAME_B
 *     MECH   pipe pipe-1m pipe-vmsplice fifo unix-stream unix-dgram tcp posix-mq sysv-mq
 *            signal signalfd posix-sem sysv-sem futex eventfd shm floor
 *     TEST   lat | tput (floor: syscall | memcpy)
 *     NAME_A, NAME_B  FIFO paths or POSIX names chosen (and cleaned up) by ipc-bench
 *
 * What happens: this process sets the mechanism up, forks "pong" (the echo side), then
 * "ping" (the side that times), waits for ping, kills pong and removes what it made. Each of
 * the two pins itself to its CPU with sched_setaffinity. Output, one line each on stdout:
 *   lat NS           one round trip
 *   tput BYTES NS    bytes sent and received, and the time it took
 *   sysv msg|sem ID  a SysV object made here, so that ipc-bench can remove it if we are killed
 *   err CALL: CAUSE  the kernel refused; nothing was measured
 *   done
 *
 * Compiled by ipc-bench's build.rs with the system C compiler (cc -O2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG 65536
#define SHM_SLOTS 4

/* The mechanisms, resolved from MECH once, so that no string is compared in a timed loop. */
enum mech {
    M_PIPE, M_PIPE_1M, M_PIPE_VMSPLICE, M_FIFO, M_UNIX_STREAM, M_UNIX_DGRAM, M_TCP, M_POSIX_MQ, M_SYSV_MQ, M_SIGNAL, M_SIGNALFD, M_POSIX_SEM, M_SYSV_SEM, M_FUTEX, M_EVENTFD, M_SHM, M_FLOOR,
    M_COUNT
};
static const char *const MECH_NAMES[M_COUNT] = {
    "pipe", "pipe-1m", "pipe-vmsplice", "fifo", "unix-stream", "unix-dgram", "tcp", "posix-mq", "sysv-mq", "signal", "signalfd", "posix-sem", "sysv-sem", "futex", "eventfd", "shm", "floor",
};

/* The same shapes as src/mech/shm.rs and src/mech/futex.rs. */
struct slot {
    uint32_t state; /* 0 empty, 1 full, 2 the sender ended */
    uint32_t len;
    char data[MAX_MSG];
};
struct shm_ring {
    uint32_t turn; /* round trips: 1 = ping's message is there, 2 = pong's reply is */
    uint32_t pad[15];
    struct slot slots[SHM_SLOTS];
};

struct ctx {
    enum mech m;
    size_t size;
    /* fd-based mechanisms: ping writes tx[0] and reads rx[0]; pong reads tx[1]... */
    int p2c_r, p2c_w, c2p_r, c2p_w; /* pipes, FIFOs; sockets use p2c_w/c2p_r (ping) p2c_r/c2p_w (pong) */
    int dgram;                      /* the sender ends with an empty message, not by closing */
    int devnull;
    mqd_t mq_p2c, mq_c2p;
    int msqid, semid;
    sem_t *sem_p2c, *sem_c2p;
    int efd_p2c, efd_c2p;
    int sfd;
    pid_t peer;
    struct shm_ring *ring;
    uint32_t *futex_word;
};

static void die(const char *call)
{
    char line[256];
    int n = snprintf(line, sizeof line, "err %s: %s\n", call, strerror(errno));
    /* One write, so that the line is never torn by the other process's output. */
    if (write(1, line, (size_t)n) < 0) { /* nobody to tell */ }
    _exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
}

static int is(const struct ctx *c, enum mech m) { return c->m == m; }

/* At least one write(2), so that an empty datagram (the end marker) is sent too. */
static void write_all(int fd, const char *buf, size_t n)
{
    do {
        ssize_t w = write(fd, buf, n);
        if (w < 0) { if (errno == EINTR) continue; die("write"); }
        buf += w;
        n -= (size_t)w;
    } while (n > 0);
}

static size_t read_some(int fd, char *buf, size_t cap)
{
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r >= 0) return (size_t)r;
        if (errno != EINTR) die("read");
    }
}

static void read_one(int fd)
{
    char b;
    if (read_some(fd, &b, 1) != 1) { errno = EPIPE; die("read: peer gone"); }
}

static void futex_wait(uint32_t *w, uint32_t val)
{
    if (syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0) < 0 && errno != EAGAIN && errno != EINTR)
        die("futex(FUTEX_WAIT)");
}

static void futex_wake(uint32_t *w)
{
    if (syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0) < 0) die("futex(FUTEX_WAKE)");
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- set-up, in the parent, before the fork (as ipc-bench's coordinator does) ---------- */

static void make_pipe(int *r, int *w)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) die("pipe2");
    *r = fds[0];
    *w = fds[1];
}

static void make_fifo(const char *path, int *r, int *w)
{
    if (mkfifo(path, 0600) < 0) die("mkfifo");
    /* A reader must exist for a writer's open to succeed: open it non-blocking first. */
    if ((*r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) die("open(O_RDONLY)");
    if ((*w = open(path, O_WRONLY | O_CLOEXEC)) < 0) die("open(O_WRONLY)");
    if (fcntl(*r, F_SETFL, 0) < 0) die("fcntl(F_SETFL)");
    if (unlink(path) < 0) die("unlink");
}

static void make_socketpair(int type, int *a, int *b)
{
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
    *a = sv[0];
    *b = sv[1];
}

static void make_tcp(int *a, int *b)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) die("socket");
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(l, 1) < 0) die("listen");
    if (getsockname(l, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    if ((*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) die("socket");
    if (connect(*a, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    if ((*b = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) die("accept4");
    close(l);
    if (setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt");
    if (setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt");
}

static mqd_t make_mq(const char *name, size_t msgsize)
{
    struct mq_attr attr = {.mq_maxmsg = 10, .mq_msgsize = (long)msgsize};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
    if (q == (mqd_t)-1) die("mq_open");
    if (mq_unlink(name) < 0) die("mq_unlink");
    return q;
}

static sem_t *make_sem(const char *name)
{
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    if (s == SEM_FAILED) die("sem_open");
    if (sem_unlink(name) < 0) die("sem_unlink");
    return s;
}

static void *shared_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    return p;
}

static void setup(struct ctx *c, int tput, const char *name_a, const char *name_b)
{
    size_t msgsize = tput ? c->size : 1;
    c->p2c_r = c->p2c_w = c->c2p_r = c->c2p_w = -1;
    if (is(c, M_PIPE) || is(c, M_PIPE_1M) || is(c, M_PIPE_VMSPLICE)) {
        make_pipe(&c->p2c_r, &c->p2c_w);
        make_pipe(&c->c2p_r, &c->c2p_w);
        if (is(c, M_PIPE_1M) && fcntl(c->p2c_w, F_SETPIPE_SZ, 1 << 20) < 0) die("fcntl(F_SETPIPE_SZ)");
        if (is(c, M_PIPE_VMSPLICE) && (c->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
            die("open(/dev/null)");
    } else if (is(c, M_FIFO)) {
        make_fifo(name_a, &c->p2c_r, &c->p2c_w);
        make_fifo(name_b, &c->c2p_r, &c->c2p_w);
    } else if (is(c, M_UNIX_STREAM) || is(c, M_UNIX_DGRAM) || is(c, M_TCP)) {
        int a, b;
        if (is(c, M_TCP))
            make_tcp(&a, &b);
        else
            make_socketpair(is(c, M_UNIX_STREAM) ? SOCK_STREAM : SOCK_DGRAM, &a, &b);
        c->dgram = is(c, M_UNIX_DGRAM);
        c->p2c_w = c->c2p_r = a; /* ping's end */
        c->p2c_r = c->c2p_w = b; /* pong's end */
    } else if (is(c, M_POSIX_MQ)) {
        c->mq_p2c = make_mq(name_a, msgsize);
        c->mq_c2p = make_mq(name_b, msgsize);
    } else if (is(c, M_SYSV_MQ)) {
        if ((c->msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600)) < 0) die("msgget");
        printf("sysv msg %d\n", c->msqid);
    } else if (is(c, M_SYSV_SEM)) {
        if ((c->semid = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600)) < 0) die("semget");
        printf("sysv sem %d\n", c->semid);
    } else if (is(c, M_POSIX_SEM)) {
        c->sem_p2c = make_sem(name_a);
        c->sem_c2p = make_sem(name_b);
    } else if (is(c, M_EVENTFD)) {
        if ((c->efd_p2c = eventfd(0, EFD_CLOEXEC)) < 0) die("eventfd");
        if ((c->efd_c2p = eventfd(0, EFD_CLOEXEC)) < 0) die("eventfd");
    } else if (is(c, M_FUTEX)) {
        c->futex_word = shared_anon(4096);
    } else if (is(c, M_SHM)) {
        int fd = shm_open(name_a, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) die("shm_open");
        if (ftruncate(fd, sizeof(struct shm_ring)) < 0) die("ftruncate");
        c->ring = mmap(NULL, sizeof(struct shm_ring), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (c->ring == MAP_FAILED) die("mmap");
        close(fd);
        if (shm_unlink(name_a) < 0) die("shm_unlink");
    } else if (is(c, M_SIGNAL) || is(c, M_SIGNALFD)) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGRTMIN);
        /* Blocked before the fork, so that no signal can arrive before a process waits. */
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die("sigprocmask");
        if (is(c, M_SIGNALFD) && (c->sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) die("signalfd");
    } else {
        errno = EINVAL;
        die("unknown mechanism");
    }
    fflush(stdout);
}

/* ---- one round trip: post tells the peer, wait waits for it --------------------------- */

struct msgbuf1 { long mtype; char mtext[MAX_MSG]; };

static void sem_op(int semid, unsigned short num, short op)
{
    struct sembuf b = {.sem_num = num, .sem_op = op, .sem_flg = 0};
    while (semop(semid, &b, 1) < 0)
        if (errno != EINTR) die("semop");
}

static void post(struct ctx *c, int is_ping)
{
    char b = 'x';
    uint64_t one = 1;
    if (c->p2c_w >= 0) {
        write_all(is_ping ? c->p2c_w : c->c2p_w, &b, 1);
    } else if (is(c, M_POSIX_MQ)) {
        if (mq_send(is_ping ? c->mq_p2c : c->mq_c2p, &b, 1, 0) < 0) die("mq_send");
    } else if (is(c, M_SYSV_MQ)) {
        struct { long mtype; char mtext[1]; } m = {is_ping ? 1 : 2, {'x'}};
        while (msgsnd(c->msqid, &m, 1, 0) < 0)
            if (errno != EINTR) die("msgsnd");
    } else if (is(c, M_SYSV_SEM)) {
        sem_op(c->semid, is_ping ? 0 : 1, 1);
    } else if (is(c, M_POSIX_SEM)) {
        if (sem_post(is_ping ? c->sem_p2c : c->sem_c2p) < 0) die("sem_post");
    } else if (is(c, M_EVENTFD)) {
        if (write(is_ping ? c->efd_p2c : c->efd_c2p, &one, 8) != 8) die("write(eventfd)");
    } else if (is(c, M_FUTEX)) {
        __atomic_store_n(c->futex_word, is_ping ? 1 : 2, __ATOMIC_RELEASE);
        futex_wake(c->futex_word);
    } else if (is(c, M_SHM)) {
        __atomic_store_n(&c->ring->turn, is_ping ? 1 : 2, __ATOMIC_RELEASE);
    } else { /* signal, signalfd */
        union sigval v = {.sival_int = 0};
        if (sigqueue(c->peer, SIGRTMIN, v) < 0) die("sigqueue");
    }
}

static void wait_peer(struct ctx *c, int is_ping)
{
    char b;
    uint64_t v;
    if (c->p2c_w >= 0) {
        read_one(is_ping ? c->c2p_r : c->p2c_r);
    } else if (is(c, M_POSIX_MQ)) {
        char buf[16];
        while (mq_receive(is_ping ? c->mq_c2p : c->mq_p2c, buf, sizeof buf, NULL) < 0)
            if (errno != EINTR) die("mq_receive");
    } else if (is(c, M_SYSV_MQ)) {
        struct { long mtype; char mtext[1]; } m;
        while (msgrcv(c->msqid, &m, 1, is_ping ? 2 : 1, 0) < 0)
            if (errno != EINTR) die("msgrcv");
    } else if (is(c, M_SYSV_SEM)) {
        sem_op(c->semid, is_ping ? 1 : 0, -1);
    } else if (is(c, M_POSIX_SEM)) {
        while (sem_wait(is_ping ? c->sem_c2p : c->sem_p2c) < 0)
            if (errno != EINTR) die("sem_wait");
    } else if (is(c, M_EVENTFD)) {
        if (read(is_ping ? c->efd_c2p : c->efd_p2c, &v, 8) != 8) die("read(eventfd)");
    } else if (is(c, M_FUTEX)) {
        uint32_t want = is_ping ? 2 : 1, cur;
        while ((cur = __atomic_load_n(c->futex_word, __ATOMIC_ACQUIRE)) != want)
            futex_wait(c->futex_word, cur);
    } else if (is(c, M_SHM)) {
        uint32_t want = is_ping ? 2 : 1;
        while (__atomic_load_n(&c->ring->turn, __ATOMIC_ACQUIRE) != want) cpu_relax();
    } else if (is(c, M_SIGNAL)) {
        sigset_t set;
        siginfo_t si;
        sigemptyset(&set);
        sigaddset(&set, SIGRTMIN);
        while (sigwaitinfo(&set, &si) < 0)
            if (errno != EINTR) die("sigwaitinfo");
        c->peer = si.si_pid;
    } else { /* signalfd */
        struct signalfd_siginfo si;
        if (read(c->sfd, &si, sizeof si) != sizeof si) die("read(signalfd)");
        c->peer = (pid_t)si.ssi_pid;
    }
    (void)b;
}

/* ---- bulk transfer: ping sends, pong receives until the end marker ------------------- */

static void send_msg(struct ctx *c, const char *buf, size_t n)
{
    if (is(c, M_PIPE_VMSPLICE)) {
        /* The pages are lent to the pipe, not copied: buf must not change until read. */
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
        while (iov.iov_len > 0) {
            ssize_t w = vmsplice(c->p2c_w, &iov, 1, 0);
            if (w < 0) { if (errno == EINTR) continue; die("vmsplice"); }
            iov.iov_base = (char *)iov.iov_base + w;
            iov.iov_len -= (size_t)w;
        }
    } else if (c->p2c_w >= 0) {
        write_all(c->p2c_w, buf, n);
    } else if (is(c, M_POSIX_MQ)) {
        if (mq_send(c->mq_p2c, buf, n, 0) < 0) die("mq_send");
    } else if (is(c, M_SYSV_MQ)) {
        static struct msgbuf1 m;
        m.mtype = 1;
        memcpy(m.mtext, buf, n);
        while (msgsnd(c->msqid, &m, n, 0) < 0)
            if (errno != EINTR) die("msgsnd");
    } else if (is(c, M_SHM)) {
        static uint64_t seq;
        struct slot *s = &c->ring->slots[seq++ % SHM_SLOTS];
        while (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != 0) cpu_relax();
        memcpy(s->data, buf, n);
        s->len = (uint32_t)n;
        __atomic_store_n(&s->state, n ? 1 : 2, __ATOMIC_RELEASE);
    } else {
        errno = EINVAL;
        die("send: mechanism carries no data");
    }
}

static void end_stream(struct ctx *c)
{
    if (c->dgram || is(c, M_POSIX_MQ) || is(c, M_SYSV_MQ) || is(c, M_SHM)) {
        send_msg(c, "", 0); /* an empty message marks the end */
    } else if (is(c, M_TCP) || is(c, M_UNIX_STREAM)) {
        if (shutdown(c->p2c_w, SHUT_WR) < 0) die("shutdown");
    } else {
        close(c->p2c_w); /* the reader sees EOF */
    }
}

static size_t recv_msg(struct ctx *c, char *buf, size_t cap)
{
    if (is(c, M_PIPE_VMSPLICE)) {
        for (;;) {
            ssize_t r = splice(c->p2c_r, NULL, c->devnull, NULL, cap, SPLICE_F_MOVE);
            if (r >= 0) return (size_t)r;
            if (errno != EINTR) die("splice");
        }
    } else if (c->p2c_w >= 0 || c->p2c_r >= 0) {
        return read_some(c->p2c_r, buf, cap);
    } else if (is(c, M_POSIX_MQ)) {
        ssize_t r;
        while ((r = mq_receive(c->mq_p2c, buf, cap, NULL)) < 0)
            if (errno != EINTR) die("mq_receive");
        return (size_t)r;
    } else if (is(c, M_SYSV_MQ)) {
        static struct msgbuf1 m;
        ssize_t r;
        while ((r = msgrcv(c->msqid, &m, cap, 1, 0)) < 0)
            if (errno != EINTR) die("msgrcv");
        memcpy(buf, m.mtext, (size_t)r);
        return (size_t)r;
    } else {
        static uint64_t seq;
        struct slot *s = &c->ring->slots[seq++ % SHM_SLOTS];
        uint32_t st;
        size_t n;
        while ((st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) == 0) cpu_relax();
        n = st == 2 ? 0 : s->len;
        memcpy(buf, s->data, n);
        __atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
        return n;
    }
}

/* ---- the two processes ---------------------------------------------------------------- */

struct plan {
    int tput;
    uint64_t budget, warmup;
    size_t max_samples;
    int ack_r, ack_w;
};

static void close_if(int fd) { if (fd >= 0) close(fd); }

static void pong(struct ctx *c, const struct plan *p)
{
    if (!p->tput) {
        for (;;) {
            wait_peer(c, 0);
            post(c, 0);
        }
    }
    /* Page-aligned, as the Rust side's buffers (harness.rs, PageBuf). */
    static char buf[MAX_MSG] __attribute__((aligned(4096)));
    uint64_t got = 0;
    size_t n;
    /* Pong only reads: its copy of the write end must go, or it would never see EOF. */
    if (!c->dgram && !is(c, M_TCP) && !is(c, M_UNIX_STREAM)) close_if(c->p2c_w), c->p2c_w = -1;
    while ((n = recv_msg(c, buf, sizeof buf)) > 0) got += n;
    write_all(p->ack_w, (const char *)&got, sizeof got);
    _exit(0);
}

static void ping(struct ctx *c, const struct plan *p)
{
    if (!p->tput) {
        uint64_t *samples = malloc(p->max_samples * sizeof *samples);
        size_t n = 0;
        if (!samples) die("malloc");
        for (uint64_t warm = now_ns() + p->warmup; now_ns() < warm;) {
            post(c, 1);
            wait_peer(c, 1);
        }
        for (uint64_t stop = now_ns() + p->budget; n < p->max_samples;) {
            uint64_t t0 = now_ns(), t1;
            post(c, 1);
            wait_peer(c, 1);
            t1 = now_ns();
            samples[n++] = t1 - t0;
            if (t1 >= stop) break;
        }
        for (size_t i = 0; i < n; i++) printf("lat %llu\n", (unsigned long long)samples[i]);
    } else {
        static char msg[MAX_MSG] __attribute__((aligned(4096)));
        uint64_t sent = 0, got = 0, t0, stop;
        memset(msg, 0x5a, sizeof msg);
        if (!c->dgram && !is(c, M_TCP) && !is(c, M_UNIX_STREAM)) close_if(c->p2c_r), c->p2c_r = -1;
        t0 = now_ns();
        stop = t0 + p->budget;
        do {
            send_msg(c, msg, c->size);
            sent += c->size;
        } while (now_ns() < stop);
        end_stream(c);
        if (read_some(p->ack_r, (char *)&got, sizeof got) != sizeof got) {
            errno = EPIPE;
            die("read(ack)");
        }
        if (got != sent) {
            printf("err received %llu of %llu bytes\n", (unsigned long long)got, (unsigned long long)sent);
            fflush(stdout);
            _exit(1);
        }
        printf("tput %llu %llu\n", (unsigned long long)sent, (unsigned long long)(now_ns() - t0));
    }
    printf("done\n");
    fflush(stdout);
    _exit(0);
}

/* ---- the floor: a bare system call, and memcpy -------------------------------------- */

static void floor_test(const char *test, size_t size, int cpu, uint64_t budget, size_t max_samples)
{
    pin(cpu);
    if (strcmp(test, "syscall") == 0) {
        /* Batches of 100 getppid() calls, which glibc does not cache: one sample per batch. */
        uint64_t stop = now_ns() + budget;
        for (size_t n = 0; n < max_samples; n++) {
            uint64_t t0 = now_ns(), t1;
            for (int i = 0; i < 100; i++) syscall(SYS_getppid);
            t1 = now_ns();
            printf("lat %llu\n", (unsigned long long)((t1 - t0) / 100));
            if (t1 >= stop) break;
        }
    } else {
        /* One buffer, the destination 64 KiB after the source, as in floor.rs: the distance
         * between the two modulo 4 KiB changes memcpy's speed (4K aliasing), so both sides
         * use the same one. */
        static char buf[2 * MAX_MSG] __attribute__((aligned(4096)));
        char *src = buf, *dst = buf + MAX_MSG;
        size_t batch = size >= (1u << 20) ? 1 : (1u << 20) / size;
        uint64_t bytes = 0, t0 = now_ns(), stop = t0 + budget, t1;
        memset(src, 0x5a, MAX_MSG);
        do {
            for (size_t i = 0; i < batch; i++) {
                memcpy(dst, src, size);
                /* Tell the compiler dst is used, so the copy is not optimised away. */
                __asm__ volatile("" : : "r"(dst) : "memory");
            }
            bytes += batch * size;
        } while ((t1 = now_ns()) < stop);
        printf("tput %llu %llu\n", (unsigned long long)bytes, (unsigned long long)(t1 - t0));
    }
    printf("done\n");
}

int main(int argc, char **argv)
{
    struct ctx c = {0};
    struct plan p = {0};
    int cpu_ping, cpu_pong, acks[2];
    pid_t pong_pid, ping_pid;

    if (argc != 11) {
        fprintf(stderr, "usage: %s MECH TEST SIZE CPU_PING CPU_PONG BUDGET_NS WARMUP_NS "
                        "MAX_SAMPLES NAME_A NAME_B\n", argv[0]);
        return 2;
    }
    for (c.m = 0; c.m < M_COUNT && strcmp(MECH_NAMES[c.m], argv[1]) != 0; c.m++) {}
    if (c.m == M_COUNT) {
        fprintf(stderr, "%s: unknown mechanism '%s'\n", argv[0], argv[1]);
        return 2;
    }
    c.size = strtoul(argv[3], NULL, 10);
    cpu_ping = atoi(argv[4]);
    cpu_pong = atoi(argv[5]);
    p.tput = strcmp(argv[2], "tput") == 0;
    p.budget = strtoull(argv[6], NULL, 10);
    p.warmup = strtoull(argv[7], NULL, 10);
    p.max_samples = strtoul(argv[8], NULL, 10);
    if (c.size > MAX_MSG || p.max_samples == 0) {
        fprintf(stderr, "%s: size above %d or no samples\n", argv[0], MAX_MSG);
        return 2;
    }
    if (is(&c, M_FLOOR)) {
        floor_test(argv[2], c.size ? c.size : 1, cpu_ping, p.budget, p.max_samples);
        return 0;
    }

    setup(&c, p.tput, argv[9], argv[10]);
    if (pipe2(acks, O_CLOEXEC) < 0) die("pipe2");
    p.ack_r = acks[0];
    p.ack_w = acks[1];

    /* Pong first, so that ping knows whom to signal; pong learns ping from si_pid. */
    if ((pong_pid = fork()) < 0) die("fork");
    if (pong_pid == 0) {
        pin(cpu_pong);
        close(p.ack_r);
        pong(&c, &p);
    }
    c.peer = pong_pid;
    if ((ping_pid = fork()) < 0) die("fork");
    if (ping_pid == 0) {
        pin(cpu_ping);
        /* Only pong may hold the ack's write end: if pong dies, ping sees EOF. */
        close(p.ack_w);
        ping(&c, &p);
    }
    /* This process keeps no end open: a stream's reader sees EOF only once every copy of
     * the write end is closed, and ping's and pong's copies are the only ones that count. */
    close(p.ack_r);
    close(p.ack_w);
    close_if(c.p2c_w);
    if (c.p2c_r != c.p2c_w) close_if(c.p2c_r);
    if (c.c2p_r != c.p2c_w) close_if(c.c2p_r);
    if (c.c2p_w != c.p2c_r) close_if(c.c2p_w);
    if (waitpid(ping_pid, NULL, 0) < 0) die("waitpid");
    kill(pong_pid, SIGKILL);
    waitpid(pong_pid, NULL, 0);
    if (is(&c, M_SYSV_MQ)) msgctl(c.msqid, IPC_RMID, NULL);
    if (is(&c, M_SYSV_SEM)) semctl(c.semid, 0, IPC_RMID);
    return 0;
}
