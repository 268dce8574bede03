/* A benchmark program for A/B and continuous-mode checks: WORK iterations of integer
 * arithmetic per run, one observer row per timed run (as TFLite's benchmark_model or
 * speed_benchmark_torch print theirs).
 *
 *   cc -O1 -DWORK=300000 -o busy_loop busy_loop.c
 *   ./busy_loop WARMUP RUNS
 *
 * A copy named busy_loop-1.020 does 1.02 times the work: one build, so that both sides of an
 * A/B run the same machine code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef WORK
#define WORK 300000
#endif

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double factor(const char *path) {
    const char *name = strrchr(path, '/');
    const char *dash = strrchr(name ? name + 1 : path, '-');
    return dash ? atof(dash + 1) : 1.0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s WARMUP RUNS\n", argv[0]);
        return 2;
    }
    int warmup = atoi(argv[1]), runs = atoi(argv[2]);
    long work = (long)(WORK * factor(argv[0]) + 0.5);
    volatile unsigned long sink = 0;
    for (int run = -warmup; run < runs; run++) {
        double start = now_us();
        unsigned long total = 0;
        for (long i = 0; i < work; i++) total += (i * i) % 7;
        sink += total;
        if (run >= 0)
            printf("AIBENCH {\"type\": \"NET\", \"metric\": \"latency\", \"unit\": \"us\", "
                   "\"value\": %.3f}\n", now_us() - start);
    }
    return 0;
}
