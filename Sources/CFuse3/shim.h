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

/* A fixed mmap threshold (which also stops glibc from raising it dynamically): buffers of
   256 KiB and more are mmap'd and given back to the system when freed, so the 1 MiB block
   and socket buffers do not pile up in fragmented heaps (measured: 200+ MiB of retained
   heap after a 1 GiB read with the threshold at 4 MiB; block buffers are pooled instead). */
static inline void fdfs_tune_malloc(void) { mallopt(M_MMAP_THRESHOLD, 256 << 10); }

static inline int fdfs_umount2(const char *target, int flags) { return umount2(target, flags); }
static inline unsigned int fdfs_major(dev_t dev) { return major(dev); }
static inline unsigned int fdfs_minor(dev_t dev) { return minor(dev); }
#endif
