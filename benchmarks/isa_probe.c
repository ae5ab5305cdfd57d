/* Instruction-throughput probe for benchmarks/physical_limit.py: how many FLOP (or int8 ops) one core
 * retires per second with each vector ISA, and its clock (a chain of dependent adds retires one per
 * cycle). Usage: isa_probe KERNEL ITERATIONS BURSTS -> prints the best of BURSTS runs (GFLOP/s, GOP/s or
 * GHz): on a shared machine the best short burst is the one no other process interrupted.
 * Kernels: clock, fma256 (AVX2 FMA f32), fma512 (AVX-512 FMA f32), bf16 (AVX512_BF16 VDPBF16PS),
 * vnni512 (AVX512_VNNI VPDPBUSD u8*s8). Twelve independent accumulators hide the FMA latency. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACC 12

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Register-register adds: Golden Cove and later (Sapphire Rapids) fold add-immediate chains at rename,
 * which made `add $1` retire ~6 per cycle and read 20+ GHz; a register operand keeps the chain serial. */
static double clock_ghz(long n) {
    uint64_t x = 0, one = 1;
    double t = now();
    for (long i = 0; i < n; i++)
        __asm__ volatile("add %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\t"
                         "add %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0" : "+r"(x) : "r"(one));
    return n * 10.0 / (now() - t) / 1e9;
}

__attribute__((target("avx2,fma"))) static double fma256(long n) {
    __m256 a[ACC], b = _mm256_set1_ps(1.0001f), c = _mm256_set1_ps(0.999f);
    for (int j = 0; j < ACC; j++) a[j] = _mm256_set1_ps((float)j);
    double t = now();
    for (long i = 0; i < n; i++)
        for (int j = 0; j < ACC; j++) a[j] = _mm256_fmadd_ps(a[j], b, c);
    t = now() - t;
    float o[8], s = 0;
    for (int j = 0; j < ACC; j++) { _mm256_storeu_ps(o, a[j]); s += o[0]; }
    if (s == 1.234f) puts("");
    return n * ACC * 16.0 / t / 1e9;  /* 8 lanes x (mul + add) */
}

__attribute__((target("avx512f"))) static double fma512(long n) {
    __m512 a[ACC], b = _mm512_set1_ps(1.0001f), c = _mm512_set1_ps(0.999f);
    for (int j = 0; j < ACC; j++) a[j] = _mm512_set1_ps((float)j);
    double t = now();
    for (long i = 0; i < n; i++)
        for (int j = 0; j < ACC; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
    t = now() - t;
    float s = 0;
    for (int j = 0; j < ACC; j++) s += _mm512_reduce_add_ps(a[j]);
    if (s == 1.234f) puts("");
    return n * ACC * 32.0 / t / 1e9;  /* 16 lanes x (mul + add) */
}

__attribute__((target("avx512f,avx512bf16"))) static double bf16(long n) {
    __m512 a[ACC];
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = b;
    for (int j = 0; j < ACC; j++) a[j] = _mm512_set1_ps((float)j);
    double t = now();
    for (long i = 0; i < n; i++)
        for (int j = 0; j < ACC; j++) a[j] = _mm512_dpbf16_ps(a[j], b, c);
    t = now() - t;
    float s = 0;
    for (int j = 0; j < ACC; j++) s += _mm512_reduce_add_ps(a[j]);
    if (s == 1.234f) puts("");
    return n * ACC * 64.0 / t / 1e9;  /* 16 lanes x 2 bf16 pairs x (mul + add) */
}

__attribute__((target("avx512f,avx512vnni"))) static double vnni512(long n) {
    __m512i a[ACC], b = _mm512_set1_epi8(1), c = _mm512_set1_epi8(2);
    for (int j = 0; j < ACC; j++) a[j] = _mm512_set1_epi32(j);
    double t = now();
    for (long i = 0; i < n; i++)
        for (int j = 0; j < ACC; j++) a[j] = _mm512_dpbusd_epi32(a[j], b, c);
    t = now() - t;
    long s = 0;
    for (int j = 0; j < ACC; j++) s += _mm512_reduce_add_epi32(a[j]);
    if (s == 1234) puts("");
    return n * ACC * 128.0 / t / 1e9;  /* 16 lanes x 4 int8 pairs x (mul + add) */
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s KERNEL ITERATIONS BURSTS\n", argv[0]); return 2; }
    long n = atol(argv[2]), bursts = atol(argv[3]);
    const char *k = argv[1];
    double best = -1;
    for (long b = 0; b < bursts; b++) {
        double v = !strcmp(k, "clock") ? clock_ghz(n) : !strcmp(k, "fma256") ? fma256(n)
                 : !strcmp(k, "fma512") ? fma512(n) : !strcmp(k, "bf16") ? bf16(n)
                 : !strcmp(k, "vnni512") ? vnni512(n) : -1;
        if (v < 0) { fprintf(stderr, "unknown kernel %s\n", k); return 2; }
        if (v > best) best = v;
    }
    printf("%.3f\n", best);
    return 0;
}
