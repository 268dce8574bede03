/* A memory-bound benchmark program for perf/detect.py: each run follows STEPS links of a
 * random cycle through a 4 MiB array (twice this machine's 2 MiB L2 per core), so that nearly
 * every step waits on the shared cache or memory; one observer row per timed run.
 *
 *   cc -O1 -o pointer_chase pointer_chase.c
 *   ./pointer_chase WARMUP RUNS
 *
 * A copy named pointer_chase-1.020 takes 1.02 times the steps: one build for both sides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (4u << 20)
#ifndef STEPS
#define STEPS 100000
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
    long steps = (long)(STEPS * factor(argv[0]) + 0.5);
    size_t slots = BYTES / sizeof(size_t);
    size_t *next = malloc(BYTES);
    if (!next) return 1;
    /* Sattolo's shuffle: one cycle through every slot, in an order the prefetcher cannot guess */
    for (size_t i = 0; i < slots; i++) next[i] = i;
    srand(12345);
    for (size_t i = slots - 1; i > 0; i--) {
        size_t j = (size_t)rand() % i, kept = next[i];
        next[i] = next[j];
        next[j] = kept;
    }
    volatile size_t sink = 0;
    size_t at = 0;
    for (int run = -warmup; run < runs; run++) {
        double start = now_us();
        for (long step = 0; step < steps; step++) at = next[at];
        sink += at;
        if (run >= 0)
            printf("AIBENCH {\"type\": \"NET\", \"metric\": \"latency\", \"unit\": \"us\", "
                   "\"value\": %.3f}\n", now_us() - start);
    }
    free(next);
    return 0;
}
