/* The C side of sem-demo/bench/sem.sh: the same semaphore calls as sem-demo, from C.
 *
 *   pair N            N x (sem_wait + sem_post) on a POSIX named semaphore, uncontended
 *   sysv-pair N       N x (semop -1, semop +1) on a SysV set, uncontended
 *   handoff-posix N   N round trips between two processes: post A / wait B <-> wait A / post B
 *   handoff-sysv N    the same with two SysV sets (as sem-demo, which has one permit count per set)
 *
 * Prints one line: "<mode> <ns per pair or round trip>": CPU time per pair (the pairs never
 * sleep), wall time per round trip. Built by bench/sem.sh with cc -O2.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Wall time for the hand-offs (they sleep by design); CPU time of this process for the
 * uncontended pairs, which never sleep: on a shared machine, time spent preempted is someone
 * else's work, not the pair's. */
static double now_ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static sem_t *posix_sem(const char *tag, unsigned value) {
    char name[64];
    snprintf(name, sizeof name, "/ipc-demo-bench-c-%s-%d", tag, (int)getpid());
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, value);
    if (s == SEM_FAILED) die("sem_open");
    sem_unlink(name); /* the mapping stays; nothing is left behind */
    return s;
}

static void op(int id, int num, int delta) {
    struct sembuf b = {(unsigned short)num, (short)delta, 0};
    if (semop(id, &b, 1) != 0) die("semop");
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s MODE N\n", argv[0]); return 2; }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    double t0, t1;
    if (strcmp(mode, "pair") == 0) {
        sem_t *s = posix_sem("pair", 1);
        t0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (long i = 0; i < n; i++) {
            if (sem_wait(s) != 0) die("sem_wait");
            if (sem_post(s) != 0) die("sem_post");
        }
        t1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    } else if (strcmp(mode, "sysv-pair") == 0) {
        int id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
        if (id < 0) die("semget");
        op(id, 0, 1);
        t0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (long i = 0; i < n; i++) { op(id, 0, -1); op(id, 0, 1); }
        t1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
        semctl(id, 0, IPC_RMID);
    } else if (strcmp(mode, "handoff-posix") == 0 || strcmp(mode, "handoff-sysv") == 0) {
        int sysv = strcmp(mode, "handoff-sysv") == 0;
        sem_t *a = NULL, *b = NULL;
        int ida = -1, idb = -1;
        if (sysv) {
            ida = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
            idb = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
            if (ida < 0 || idb < 0) die("semget");
        } else {
            a = posix_sem("a", 0);
            b = posix_sem("b", 0);
        }
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            for (long i = 0; i < n; i++) {
                if (sysv) { op(ida, 0, -1); op(idb, 0, 1); }
                else { sem_wait(a); sem_post(b); }
            }
            _exit(0);
        }
        t0 = now_ns(CLOCK_MONOTONIC);
        for (long i = 0; i < n; i++) {
            if (sysv) { op(ida, 0, 1); op(idb, 0, -1); }
            else { sem_post(a); sem_wait(b); }
        }
        t1 = now_ns(CLOCK_MONOTONIC);
        waitpid(pid, NULL, 0);
        if (sysv) { semctl(ida, 0, IPC_RMID); semctl(idb, 0, IPC_RMID); }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("%s %.1f\n", mode, (t1 - t0) / n);
    return 0;
}
