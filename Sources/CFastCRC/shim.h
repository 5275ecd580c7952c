#ifndef FDFS_FASTCRC_H
#define FDFS_FASTCRC_H
#include <stdint.h>
#include <stddef.h>
#include <zlib.h>
#include <malloc.h>
#include <unistd.h>
#include <sys/syscall.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define FDFS_HAVE_CLMUL 1
#endif

#ifdef FDFS_HAVE_CLMUL
/* CRC-32 (IEEE 802.3, zlib's) folded with PCLMULQDQ, after Gopal et al., "Fast CRC
   Computation for Generic Polynomials Using PCLMULQDQ Instruction" (Intel, 2009), with the
   bit-reflected constants given there. `crc` is the internal (pre-inverted) state; len must be
   >= 64 and a multiple of 16. */
__attribute__((target("sse4.1,pclmul")))
static inline uint32_t fdfs_crc32_fold(const unsigned char *buf, size_t len, uint32_t crc) {
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k5k0 = _mm_set_epi64x(0x0000000000, 0x0163cd6124);
    const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
    x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
    x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
    x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
    x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    x0 = k1k2;
    buf += 64; len -= 64;
    while (len >= 64) {
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
        x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
        x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
        x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
        x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
        y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
        x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
        x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
        x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
        buf += 64; len -= 64;
    }
    x0 = k3k4;
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
    while (len >= 16) {
        x2 = _mm_loadu_si128((const __m128i *)buf);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        buf += 16; len -= 16;
    }
    x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
    x3 = _mm_setr_epi32(~0, 0, ~0, 0);
    x1 = _mm_srli_si128(x1, 8);
    x1 = _mm_xor_si128(x1, x2);
    x0 = k5k0;
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_and_si128(x1, x3);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    x0 = poly;
    x2 = _mm_and_si128(x1, x3);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
    x2 = _mm_and_si128(x2, x3);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

#endif

/* 1 when the CPU can run fdfs_crc32_fold. */
static inline int fdfs_crc32_fast_available(void) {
#ifdef FDFS_HAVE_CLMUL
    __builtin_cpu_init();
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#else
    return 0;
#endif
}

/* Same result as zlib's crc32(crc, buf, len); the bulk is folded with PCLMULQDQ when `fast`,
   the tail (and everything on other CPUs) goes through zlib. */
static inline uint32_t fdfs_crc32_update(uint32_t crc, const unsigned char *buf, size_t len, int fast) {
#ifdef FDFS_HAVE_CLMUL
    if (fast && len >= 64) {
        size_t chunk = len & ~(size_t)15;
        crc = ~fdfs_crc32_fold(buf, chunk, ~crc);
        buf += chunk; len -= chunk;
    }
#endif
    return len ? (uint32_t)crc32_z(crc, buf, len) : crc;
}
/* Not CRC, but the libc bits the core needs that Swift's Glibc module lacks: give free heap
   pages back, O_DIRECT (a _GNU_SOURCE constant) for block cache writes, hole punching and
   SEEK_DATA for the block cache's slot files. */
static inline void fdfs_malloc_trim(void) { malloc_trim(0); }
/* fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): 0 or -1 with errno. */
static inline int fdfs_punch_hole(int fd, long offset, long length) {
    return (int)syscall(SYS_fallocate, fd, 0x02 | 0x01, offset, length);
}
/* lseek(fd, offset, SEEK_DATA): the next offset holding data, or -1 (ENXIO past the end). */
static inline long fdfs_seek_data(int fd, long offset) { return (long)lseek(fd, offset, 3); }
static inline int fdfs_o_direct(void) {
#if defined(__aarch64__) || defined(__arm__)
    return 0200000;
#elif defined(__powerpc__)
    return 0400000;
#else
    return 040000; /* x86-64 and the asm-generic value (fcntl.h would clash with Glibc's module) */
#endif
}
#endif
