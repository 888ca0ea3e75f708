/* Plugin start → handshake line, as a go-plugin host sees it: the time from posix_spawn of the
 * plugin (magic cookie set) to the first line on its stdout, median of N launches. Each plugin
 * is killed once it has answered. Usage: handshake N PLUGIN... ; prints "<plugin> <median ms>". */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One launch; returns milliseconds to the first newline, or -1. */
static double launch(const char *plugin) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    char *argv[] = {(char *)plugin, NULL};
    pid_t pid;
    double start = now_ms();
    int rc = posix_spawn(&pid, plugin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) { close(fds[0]); return -1; }
    char c;
    double took = -1;
    /* Bounded: a line is at most 4 KiB. */
    for (int i = 0; i < 4096; i++) {
        if (read(fds[0], &c, 1) != 1) break;
        if (c == '\n') { took = now_ms() - start; break; }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    return took;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: handshake N PLUGIN...\n"); return 2; }
    int n = atoi(argv[1]);
    if (n < 1 || n > 10000) n = 20;
    setenv("DS_PLUGIN_MAGIC_COOKIE", "delivery-station-plugin", 1);
    setenv("PLUGIN_PROTOCOL_VERSIONS", "1", 1);
    setenv("PLUGIN_MIN_PORT", "10000", 1);
    setenv("PLUGIN_MAX_PORT", "25000", 1);
    int plugins = argc - 2;
    double *t = calloc((size_t)(n * plugins), sizeof(double));
    /* Alternate the plugins launch by launch so machine noise hits them alike. */
    for (int i = 0; i < n; i++)
        for (int p = 0; p < plugins; p++) {
            double ms = launch(argv[2 + p]);
            if (ms < 0) { fprintf(stderr, "%s: no handshake line\n", argv[2 + p]); return 1; }
            t[p * n + i] = ms;
        }
    for (int p = 0; p < plugins; p++) {
        qsort(t + p * n, (size_t)n, sizeof(double), cmp);
        printf("%s %.3f\n", argv[2 + p], t[p * n + n / 2]);
    }
    free(t);
    return 0;
}
