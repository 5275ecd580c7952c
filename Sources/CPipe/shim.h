#ifndef FDFS_CPIPE_H
#define FDFS_CPIPE_H
/* Linux pipe and splice(2) calls that Glibc's Swift module does not export (they need
   _GNU_SOURCE, which the module is built without), declared here as the kernel defines them. */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>

extern ssize_t splice(int fd_in, long long *off_in, int fd_out, long long *off_out, size_t len, unsigned int flags);
extern int pipe2(int pipefd[2], int flags);

/* Moves up to len bytes from fd_in (a socket, a file or a pipe) into the pipe pipe_out without
   copying them through user space. Waits for fd_in (a blocking socket: up to its receive
   timeout) but never for the pipe: a full pipe fails with EAGAIN (SPLICE_F_NONBLOCK). */
static inline ssize_t fdfs_splice_into_pipe(int fd_in, int pipe_out, size_t len) {
    return splice(fd_in, 0, pipe_out, 0, len, 2 /* SPLICE_F_NONBLOCK */ | 4 /* SPLICE_F_MORE */);
}

/* A close-on-exec pipe. */
static inline int fdfs_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

/* F_SETPIPE_SZ: the pipe's capacity in bytes (rounded up by the kernel); returns it, or -1. */
static inline int fdfs_set_pipe_size(int fd, int size) { return fcntl(fd, 1031 /* F_SETPIPE_SZ */, size); }

/* Bytes waiting in a pipe (FIONREAD), or -1. */
static inline int fdfs_pipe_pending(int fd) {
    int n = 0;
    return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}
#endif
