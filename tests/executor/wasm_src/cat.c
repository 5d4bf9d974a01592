/*
 * cat for wasm32-wasi: concatenates the files named in argv[1..] to stdout.
 *
 * Besides the bytes, it exercises the WASI calls the executor makes deterministic: stderr gets
 * one line `bytes=N now=<realtime ns> mono=<monotonic ns> rand=<16 hex digits>` read through
 * clock_gettime (clock_time_get) and arc4random_buf (random_get), and /outputs/count.txt gets
 * the byte count, so a test can check the writable output mount.
 *
 * Build: clang-14 --target=wasm32-wasi -O2 -Wl,--strip-all -o cat.wasm cat.c
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long clock_ns(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) {
        return -1;
    }
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Copy one file to stdout; returns the bytes copied, or -1 after printing why it failed. */
static long long copy_file(const char *path) {
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        fprintf(stderr, "cat: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[65536];
    long long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (fwrite(buf, 1, n, stdout) != n) {
            fprintf(stderr, "cat: write error: %s\n", strerror(errno));
            fclose(in);
            return -1;
        }
        total += (long long)n;
    }
    int failed = ferror(in);
    fclose(in);
    if (failed) {
        fprintf(stderr, "cat: %s: read error\n", path);
        return -1;
    }
    return total;
}

int main(int argc, char **argv) {
    long long total = 0;
    for (int i = 1; i < argc; i++) {
        long long n = copy_file(argv[i]);
        if (n < 0) {
            return 1;
        }
        total += n;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "cat: write error: %s\n", strerror(errno));
        return 1;
    }

    uint8_t rand[8];
    arc4random_buf(rand, sizeof rand);
    char hex[2 * sizeof rand + 1];
    for (size_t i = 0; i < sizeof rand; i++) {
        snprintf(hex + 2 * i, 3, "%02x", rand[i]);
    }
    fprintf(stderr, "bytes=%lld now=%lld mono=%lld rand=%s\n", total, clock_ns(CLOCK_REALTIME),
            clock_ns(CLOCK_MONOTONIC), hex);

    FILE *out = fopen("/outputs/count.txt", "w");
    if (out == NULL) {
        fprintf(stderr, "cat: /outputs/count.txt: %s\n", strerror(errno));
        return 1;
    }
    fprintf(out, "%lld\n", total);
    if (fclose(out) != 0) {
        fprintf(stderr, "cat: /outputs/count.txt: write error\n");
        return 1;
    }
    return 0;
}
