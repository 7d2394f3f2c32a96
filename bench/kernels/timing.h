// The clock and the threaded best-of-five loop the bench programs share.
#ifndef GRAFT_BENCH_TIMING_H
#define GRAFT_BENCH_TIMING_H

#include <pthread.h>
#include <time.h>

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// One thread's share of a measured job: items lo..<hi, `passes` times over; `sink`
// takes a result so the compiler cannot drop the work.
typedef struct { long lo, hi, passes; long long sink; } part_t;

// The shortest of five runs, in seconds, of body over items 0..<count split between
// `threads` (1 or 2) threads at multiples of `align`.
static inline double best_of_five(void *(*body)(void *), long count, long align, long passes, int threads) {
    double fastest = 1e9;
    for (int run = 0; run < 5; run++) {
        pthread_t ids[2];
        part_t parts[2];
        double start = now();
        for (int i = 0; i < threads; i++) {
            parts[i] = (part_t){count * i / threads / align * align,
                                i == threads - 1 ? count : count * (i + 1) / threads / align * align, passes, 0};
            pthread_create(&ids[i], NULL, body, &parts[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
        double seconds = now() - start;
        if (seconds < fastest) fastest = seconds;
    }
    return fastest;
}

// Multiply-adds per second of a row kernel (rows lo..<hi of a matrix with `cols`
// columns, once per call) over `rows` rows, `passes` times, split between threads.
typedef void (*row_kernel_t)(long lo, long hi);
static row_kernel_t measured_kernel;

static inline void *run_measured_kernel(void *arg) {
    part_t *p = arg;
    for (long i = 0; i < p->passes; i++) measured_kernel(p->lo, p->hi);
    return NULL;
}

static inline double gmacs_of(row_kernel_t kernel, long rows, long cols, long align, long passes, int threads) {
    measured_kernel = kernel;
    return (double)rows * cols * passes / best_of_five(run_measured_kernel, rows, align, passes, threads) / 1e9;
}

#endif
