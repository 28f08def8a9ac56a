/*
 * Per-invocation cost of several commands, run interleaved (A B C A B C ...) so that a
 * change in the machine's speed during the run (another VM on the host, a busy core)
 * falls on all of them alike, rather than on whichever ran while it lasted.
 *
 *   interleave N CMD1 ARGS... [--- CMD2 ARGS...]...
 *
 * Each command runs N times, started with posix_spawnp (the same cost for all) and reaped
 * with wait4, whose rusage gives the CPU time (user + system) of that one invocation and of
 * everything it waited for (the command `flock` or `sem-demo run` starts). Prints one line
 * per command: "wall_best wall_median cpu_best cpu_median", in microseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double us(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: interleave N CMD ARGS... [--- CMD ARGS...]...\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    if (n < 1) {
        fprintf(stderr, "interleave: N must be at least 1\n");
        return 2;
    }
    /* Split the rest at "---" into commands, in place: each separator becomes NULL. */
    char **cmds[64];
    int ncmd = 0;
    cmds[ncmd++] = &argv[2];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "---") == 0) {
            argv[i] = NULL;
            if (ncmd == 64 || i + 1 >= argc) {
                fprintf(stderr, "interleave: too many commands, or an empty last one\n");
                return 2;
            }
            cmds[ncmd++] = &argv[i + 1];
        }
    }
    for (int c = 0; c < ncmd; c++)
        if (!cmds[c][0]) {
            fprintf(stderr, "interleave: an empty command\n");
            return 2;
        }
    double *wall = calloc((size_t)(n * ncmd), sizeof *wall);
    double *cpu = calloc((size_t)(n * ncmd), sizeof *cpu);
    if (!wall || !cpu) {
        perror("interleave: calloc");
        return 1;
    }
    for (long r = 0; r < n; r++) {
        for (int c = 0; c < ncmd; c++) {
            struct timespec t0, t1;
            struct rusage ru;
            pid_t pid;
            int status;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int e = posix_spawnp(&pid, cmds[c][0], NULL, NULL, cmds[c], environ);
            if (e) {
                fprintf(stderr, "interleave: %s: %s\n", cmds[c][0], strerror(e));
                return 1;
            }
            while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR) {
                    perror("interleave: wait4");
                    return 1;
                }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (!WIFEXITED(status) || WEXITSTATUS(status)) {
                fprintf(stderr, "interleave: %s failed (status %#x)\n", cmds[c][0], status);
                return 1;
            }
            wall[c * n + r] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
            cpu[c * n + r] = us(ru.ru_utime) + us(ru.ru_stime);
        }
    }
    for (int c = 0; c < ncmd; c++) {
        qsort(&wall[c * n], (size_t)n, sizeof *wall, cmp);
        qsort(&cpu[c * n], (size_t)n, sizeof *cpu, cmp);
        printf("%.1f %.1f %.1f %.1f\n", wall[c * n], wall[c * n + n / 2], cpu[c * n],
               cpu[c * n + n / 2]);
    }
    return 0;
}
