/* A program that checks tracejit's packed 8-bit and bfloat16 kernels (the pack and gemm
 * functions of tracejit/codegen_cpu/gemm) against plain C sums, with no Python: it runs
 * where Python cannot, such as on an emulated CPU. build.py compiles the kernels for a
 * named CPU into an object file and writes kernels.h, the table of what it holds.
 *
 * Each kernel runs products of many shapes (tile edges, k past a block, transposed
 * operands through the strides, C rows wider than n) on pseudo-random operands;
 * integer sums must be exact, bfloat16 products' float32 sums within a relative
 * 1e-5. Prints "PASS <kernel> <dtype>" or "FAIL ..." lines and a summary; exits 1 on
 * any failure. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef void (*pack_fn)(int64_t k, int64_t n, const void *b, int64_t b_k, int64_t b_j,
                        void *out);
typedef void (*gemm_fn)(int64_t m, int64_t n, int64_t k, const void *a, int64_t a_row,
                        int64_t a_k, const void *packed, void *c, int64_t ldc);

enum operand { INT8, UINT8, BF16 };

struct kernel {
    const char *name;
    enum operand operand;
    int tiles;              /* uses AMX: needs Linux's permission first */
    pack_fn pack;
    gemm_fn gemm;
};

#include "kernels.h"        /* KERNELS[], N_KERNELS: written by build.py */

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint32_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

static uint16_t to_bf16(float x) {          /* round to nearest even */
    uint32_t bits;
    memcpy(&bits, &x, 4);
    bits += 0x7FFF + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

static double from_bf16(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static void fill(enum operand operand, void *data, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t r = next_random();
        if (operand == BF16)
            ((uint16_t *)data)[i] = to_bf16(((float)(r % 20001) - 10000.0f) / 4000.0f);
        else
            ((uint8_t *)data)[i] = (uint8_t)r;
    }
}

static double element(enum operand operand, const void *data, size_t at) {
    if (operand == INT8) return ((const int8_t *)data)[at];
    if (operand == UINT8) return ((const uint8_t *)data)[at];
    return from_bf16(((const uint16_t *)data)[at]);
}

/* One product: 0 when every element of C is right and nothing past n was written. */
static int check(const struct kernel *kn, int64_t m, int64_t n, int64_t k, int transposed) {
    size_t size = kn->operand == BF16 ? 2 : 1;
    void *a = calloc((size_t)(m * k) + 1, size), *b = calloc((size_t)(k * n) + 1, size);
    /* generous: tiles of up to 64 columns, k padded to 64 groups of 4, corrections */
    void *packed = calloc((size_t)(n + 64) * (size_t)(k + 256) * 4 + (size_t)(n + 64) * 4, 1);
    int64_t ldc = n + 3;
    int32_t *c = malloc((size_t)(m * ldc + 1) * 4);
    fill(kn->operand, a, (size_t)(m * k));
    fill(kn->operand, b, (size_t)(k * n));
    for (int64_t i = 0; i < m * ldc; i++) c[i] = -5;
    /* A[i, kk] at a_row * i + a_k * kk; B[kk, j] at b_k * kk + b_j * j */
    int64_t a_row = transposed ? 1 : k, a_k = transposed ? m : 1;
    int64_t b_k = transposed ? 1 : n, b_j = transposed ? k : 1;
    kn->pack(k, n, b, b_k, b_j, packed);
    kn->gemm(m, n, k, a, a_row, a_k, packed, c, ldc);
    int bad = 0;
    for (int64_t i = 0; i < m && bad < 3; i++) {
        for (int64_t j = 0; j < ldc && bad < 3; j++) {
            if (j >= n) {
                if (c[i * ldc + j] != -5) {
                    printf("  wrote past n at %lld,%lld\n", (long long)i, (long long)j);
                    bad++;
                }
                continue;
            }
            double want = 0;
            for (int64_t kk = 0; kk < k; kk++)
                want += element(kn->operand, a, (size_t)(i * a_row + kk * a_k)) *
                        element(kn->operand, b, (size_t)(kk * b_k + j * b_j));
            if (kn->operand == BF16) {
                float got;
                memcpy(&got, &c[i * ldc + j], 4);
                if (fabs(got - want) > 1e-5 * fabs(want) + 1e-4 * (double)k) {
                    printf("  %lldx%lldx%lld C[%lld,%lld] = %g, want %g\n", (long long)m,
                           (long long)n, (long long)k, (long long)i, (long long)j, got, want);
                    bad++;
                }
            } else if (c[i * ldc + j] != (int32_t)(int64_t)want) {
                printf("  %lldx%lldx%lld C[%lld,%lld] = %d, want %.0f\n", (long long)m,
                       (long long)n, (long long)k, (long long)i, (long long)j,
                       c[i * ldc + j], want);
                bad++;
            }
        }
    }
    free(a);
    free(b);
    free(packed);
    free(c);
    return bad;
}

int main(void) {
    /* Linux (5.16+) grants AMX tile data on request only */
    long granted = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                           18 /* XFEATURE_XTILEDATA */);
    printf("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) = %ld\n", granted);
    static const int64_t shapes[][3] = {
        {1, 1, 1}, {7, 13, 3}, {13, 33, 17}, {25, 64, 288}, {3, 10, 1030}, {64, 64, 128},
        {70, 40, 65}, {32, 32, 64}, {33, 17, 200}, {0, 5, 5}, {4, 0, 3}, {4, 5, 0}};
    int failures = 0, runs = 0;
    for (int t = 0; t < N_KERNELS; t++) {
        const struct kernel *kn = &KERNELS[t];
        const char *dtype = kn->operand == INT8 ? "int8" : kn->operand == UINT8 ? "uint8"
                                                                                : "bfloat16";
        if (kn->tiles && granted != 0) {
            printf("SKIP %s %s (no tile state)\n", kn->name, dtype);
            continue;
        }
        int bad = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int transposed = 0; transposed < 2; transposed++)
                bad += check(kn, shapes[s][0], shapes[s][1], shapes[s][2], transposed);
        printf("%s %s %s\n", bad ? "FAIL" : "PASS", kn->name, dtype);
        failures += bad != 0;
        runs++;
    }
    printf("%d passed, %d failed\n", runs - failures, failures);
    return failures != 0;
}
