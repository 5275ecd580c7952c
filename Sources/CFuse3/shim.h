#ifndef FDFS_CFUSE3_SHIM_H
#define FDFS_CFUSE3_SHIM_H
#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <errno.h>
#include <malloc.h>

/* fuse_session_new takes sizeof(ops); on libfuse >= 3.17 it is a macro. */
static inline struct fuse_session *fdfs_fuse_session_new(struct fuse_args *args,
        const struct fuse_lowlevel_ops *op, void *userdata) {
    return fuse_session_new(args, op, sizeof(*op), userdata);
}

/* A macro on some builds (the versioned-symbol variants). */
static inline int fdfs_fuse_session_loop_mt(struct fuse_session *se, struct fuse_loop_config *config) {
    return fuse_session_loop_mt(se, config);
}

/* Glibc's Swift module lacks some _GNU_SOURCE constants. */
static const unsigned int FDFS_RENAME_NOREPLACE = 1;
static const unsigned int FDFS_RENAME_EXCHANGE = 2;
static const int FDFS_MNT_DETACH = MNT_DETACH;

/* Keep buffers below 4 MiB (1 MiB socket and block buffers) on the heap rather than a fresh
   mmap each time, and keep up to 8 MiB free at the top of each of at most 4 arenas: first-touch
   page faults are costly on this kind of VM. The core gives freed heap pages back with
   malloc_trim every few seconds (see FDFSMount), which keeps the RSS bounded. */
static inline void fdfs_tune_malloc(void) { mallopt(M_MMAP_THRESHOLD, 4 << 20); mallopt(M_TRIM_THRESHOLD, 8 << 20); mallopt(M_ARENA_MAX, 4); }

static inline int fdfs_umount2(const char *target, int flags) { return umount2(target, flags); }
static inline unsigned int fdfs_major(dev_t dev) { return major(dev); }
static inline unsigned int fdfs_minor(dev_t dev) { return minor(dev); }
#endif
