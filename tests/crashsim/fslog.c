/* An LD_PRELOAD shim that logs the file-system operations a process makes under one directory.
 *
 * CRASHSIM_ROOT names the directory (absolute, symlinks resolved); CRASHSIM_LOG the log file.
 * Every operation on a path under the root, or on a descriptor opened there, is appended to the
 * log as one tab-separated line; the bytes written go to CRASHSIM_LOG.<pid>.data, and the line
 * gives their offset there, so the test can rebuild any state the disk could be left in.
 * Lines are written with O_APPEND under one lock, in the order the operations completed; an
 * fsync logs a line before the call and one after it returns, because only the writes that
 * completed before it started are covered by it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *fd_paths[MAX_FDS];
static char root[PATH_MAX];
static size_t root_len;
static char log_path[PATH_MAX];
static int log_fd = -1;
static int data_fd = -1;
static pid_t data_pid;
static long long data_offset;
static int ready;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_rmdir)(const char *);
static int (*real_close)(int);

static void child_after_fork(void) {
    pthread_mutex_init(&lock, NULL);
    data_fd = -1; /* the child writes its own data file */
}

__attribute__((constructor)) static void init(void) {
    real_open = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev64");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate64");
    real_truncate = dlsym(RTLD_NEXT, "truncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    real_renameat2 = dlsym(RTLD_NEXT, "renameat2");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    real_mkdir = dlsym(RTLD_NEXT, "mkdir");
    real_mkdirat = dlsym(RTLD_NEXT, "mkdirat");
    real_rmdir = dlsym(RTLD_NEXT, "rmdir");
    real_close = dlsym(RTLD_NEXT, "close");
    const char *r = getenv("CRASHSIM_ROOT");
    const char *l = getenv("CRASHSIM_LOG");
    if (!r || !l || strlen(r) >= PATH_MAX - 1 || strlen(l) >= PATH_MAX - 32) return;
    strcpy(root, r);
    root_len = strlen(root);
    strcpy(log_path, l);
    log_fd = real_open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) return;
    pthread_atfork(NULL, NULL, child_after_fork);
    ready = 1;
}

static int under_root(const char *path) {
    return ready && strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == 0);
}

/* The absolute path `path` names relative to `dirfd`, with its parent's symlinks resolved. */
static int resolve(int dirfd, const char *path, char *out) {
    char joined[PATH_MAX * 2];
    if (path[0] == '/') {
        snprintf(joined, sizeof joined, "%s", path);
    } else if (dirfd == AT_FDCWD) {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return -1;
        snprintf(joined, sizeof joined, "%s/%s", cwd, path);
    } else {
        char link[64], dir[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, dir, sizeof dir - 1);
        if (n < 0) return -1;
        dir[n] = 0;
        snprintf(joined, sizeof joined, "%s/%s", dir, path);
    }
    size_t len = strlen(joined);
    while (len > 1 && joined[len - 1] == '/') joined[--len] = 0;
    char *slash = strrchr(joined, '/');
    char parent[PATH_MAX];
    if (slash == joined) {
        strcpy(parent, "/");
    } else {
        *slash = 0;
        if (!realpath(joined, parent)) return -1;
        *slash = '/';
    }
    const char *base = slash + 1;
    if (strcmp(base, ".") == 0) {
        snprintf(out, PATH_MAX, "%s", parent);
    } else {
        snprintf(out, PATH_MAX, "%s%s%s", parent, strcmp(parent, "/") == 0 ? "" : "/", base);
    }
    return 0;
}

static void emit(const char *fmt, ...) {
    char line[PATH_MAX * 3];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, args);
    va_end(args);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    int saved = errno;
    real_write(log_fd, line, n);
    errno = saved;
}

/* Copies `len` bytes to this process's data file; returns their offset there. */
static long long store(const struct iovec *iov, int count, size_t len) {
    pid_t pid = getpid();
    int saved = errno;
    if (data_fd < 0 || data_pid != pid) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s.%d.data", log_path, (int)pid);
        data_fd = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        data_pid = pid;
        data_offset = 0;
    }
    long long at = data_offset;
    size_t left = len;
    for (int i = 0; i < count && left > 0; i++) {
        size_t part = iov[i].iov_len < left ? iov[i].iov_len : left;
        const char *p = iov[i].iov_base;
        size_t done = 0;
        while (done < part) {
            ssize_t w = real_write(data_fd, p + done, part - done);
            if (w <= 0) break;
            done += (size_t)w;
        }
        left -= part;
    }
    data_offset += (long long)len;
    errno = saved;
    return at;
}

static int tracked(int fd) { return ready && fd >= 0 && fd < MAX_FDS && fd_paths[fd]; }

static int do_open(int dirfd, const char *path, int flags, mode_t mode) {
    char full[PATH_MAX];
    if (!ready || resolve(dirfd, path, full) != 0 || !under_root(full))
        return real_openat(dirfd, path, flags, mode);
    pthread_mutex_lock(&lock);
    int existed = (flags & O_CREAT) ? access(full, F_OK) == 0 : 1;
    int fd = real_openat(dirfd, path, flags, mode);
    int saved = errno;
    if (fd >= 0 && fd < MAX_FDS) {
        free(fd_paths[fd]);
        fd_paths[fd] = strdup(full);
        emit("%d\topen\t%d\t%s\t%d\t%d", (int)getpid(), fd, full, flags, !existed);
    }
    pthread_mutex_unlock(&lock);
    errno = saved;
    return fd;
}

static mode_t mode_arg(int flags, va_list args) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(args, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    return do_open(AT_FDCWD, path, flags, mode);
}
int open64(const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    return do_open(AT_FDCWD, path, flags, mode);
}
int openat(int dirfd, const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    return do_open(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_arg(flags, args);
    va_end(args);
    return do_open(dirfd, path, flags, mode);
}
int __open_2(const char *path, int flags) { return do_open(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return do_open(AT_FDCWD, path, flags, 0); }
int __openat_2(int dirfd, const char *path, int flags) { return do_open(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) { return do_open(dirfd, path, flags, 0); }
int creat(const char *path, mode_t mode) { return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

/* Logs a completed write of `done` bytes at `offset` (-1: the position the write moved from). */
static void log_write(int fd, const struct iovec *iov, int count, ssize_t done, long long offset) {
    if (done <= 0) return;
    if (offset < 0) offset = (long long)lseek(fd, 0, SEEK_CUR) - done;
    long long at = store(iov, count, (size_t)done);
    emit("%d\twrite\t%d\t%s\t%lld\t%lld\t%lld", (int)getpid(), fd, fd_paths[fd], offset, (long long)done, at);
}

ssize_t write(int fd, const void *buf, size_t len) {
    if (!tracked(fd)) return real_write(fd, buf, len);
    pthread_mutex_lock(&lock);
    ssize_t done = real_write(fd, buf, len);
    int saved = errno;
    struct iovec one = {(void *)buf, len};
    log_write(fd, &one, 1, done, -1);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return done;
}
ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset) {
    if (!tracked(fd)) return real_pwrite(fd, buf, len, offset);
    pthread_mutex_lock(&lock);
    ssize_t done = real_pwrite(fd, buf, len, offset);
    int saved = errno;
    struct iovec one = {(void *)buf, len};
    log_write(fd, &one, 1, done, offset);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return done;
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t offset) { return pwrite(fd, buf, len, offset); }
ssize_t writev(int fd, const struct iovec *iov, int count) {
    if (!tracked(fd)) return real_writev(fd, iov, count);
    pthread_mutex_lock(&lock);
    ssize_t done = real_writev(fd, iov, count);
    int saved = errno;
    log_write(fd, iov, count, done, -1);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return done;
}
ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
    if (!tracked(fd)) return real_pwritev(fd, iov, count, offset);
    pthread_mutex_lock(&lock);
    ssize_t done = real_pwritev(fd, iov, count, offset);
    int saved = errno;
    log_write(fd, iov, count, done, offset);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return done;
}
ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t offset) { return pwritev(fd, iov, count, offset); }

int ftruncate(int fd, off_t size) {
    if (!tracked(fd)) return real_ftruncate(fd, size);
    pthread_mutex_lock(&lock);
    int rc = real_ftruncate(fd, size);
    int saved = errno;
    if (rc == 0) emit("%d\ttruncate\t%d\t%s\t%lld", (int)getpid(), fd, fd_paths[fd], (long long)size);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
int ftruncate64(int fd, off_t size) { return ftruncate(fd, size); }

int truncate(const char *path, off_t size) {
    char full[PATH_MAX];
    if (!ready || resolve(AT_FDCWD, path, full) != 0 || !under_root(full)) return real_truncate(path, size);
    pthread_mutex_lock(&lock);
    int rc = real_truncate(path, size);
    int saved = errno;
    if (rc == 0) emit("%d\tpathtruncate\t-1\t%s\t%lld", (int)getpid(), full, (long long)size);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
int truncate64(const char *path, off_t size) { return truncate(path, size); }

static int do_sync(int fd, int (*real)(int), const char *name) {
    if (!tracked(fd)) return real(fd);
    pthread_mutex_lock(&lock);
    emit("%d\t%s_begin\t%d\t%s", (int)getpid(), name, fd, fd_paths[fd]);
    pthread_mutex_unlock(&lock);
    int rc = real(fd);
    int saved = errno;
    pthread_mutex_lock(&lock);
    emit("%d\t%s_end\t%d\t%s\t%d", (int)getpid(), name, fd, fd_paths[fd], rc);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
int fsync(int fd) { return do_sync(fd, real_fsync, "fsync"); }
int fdatasync(int fd) { return do_sync(fd, real_fdatasync, "fdatasync"); }

static int do_rename(int olddir, const char *old, int newdir, const char *new, unsigned int flags) {
    char from[PATH_MAX], to[PATH_MAX];
    int watched = ready && resolve(olddir, old, from) == 0 && resolve(newdir, new, to) == 0 &&
                  (under_root(from) || under_root(to));
    if (!watched) return real_renameat2(olddir, old, newdir, new, flags);
    pthread_mutex_lock(&lock);
    int rc = real_renameat2(olddir, old, newdir, new, flags);
    int saved = errno;
    if (rc == 0) emit("%d\trename\t-1\t%s\t%s", (int)getpid(), from, to);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
int rename(const char *old, const char *new) { return do_rename(AT_FDCWD, old, AT_FDCWD, new, 0); }
int renameat(int olddir, const char *old, int newdir, const char *new) {
    return do_rename(olddir, old, newdir, new, 0);
}
int renameat2(int olddir, const char *old, int newdir, const char *new, unsigned int flags) {
    return do_rename(olddir, old, newdir, new, flags);
}

/* unlink, unlinkat, rmdir, mkdir and mkdirat: one path, logged as `op` when it succeeded. */
static int path_op(const char *op, int dirfd, const char *path,
                   int (*call)(int, const char *, int, mode_t), int flags, mode_t mode) {
    char full[PATH_MAX];
    if (!ready || resolve(dirfd, path, full) != 0 || !under_root(full)) return call(dirfd, path, flags, mode);
    pthread_mutex_lock(&lock);
    int rc = call(dirfd, path, flags, mode);
    int saved = errno;
    if (rc == 0) emit("%d\t%s\t-1\t%s", (int)getpid(), op, full);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
static int call_unlinkat(int dirfd, const char *path, int flags, mode_t mode) {
    (void)mode;
    return real_unlinkat(dirfd, path, flags);
}
static int call_mkdirat(int dirfd, const char *path, int flags, mode_t mode) {
    (void)flags;
    return real_mkdirat(dirfd, path, mode);
}
int unlink(const char *path) { return path_op("unlink", AT_FDCWD, path, call_unlinkat, 0, 0); }
int unlinkat(int dirfd, const char *path, int flags) {
    return path_op((flags & AT_REMOVEDIR) ? "rmdir" : "unlink", dirfd, path, call_unlinkat, flags, 0);
}
int rmdir(const char *path) { return path_op("rmdir", AT_FDCWD, path, call_unlinkat, AT_REMOVEDIR, 0); }
int mkdir(const char *path, mode_t mode) { return path_op("mkdir", AT_FDCWD, path, call_mkdirat, 0, mode); }
int mkdirat(int dirfd, const char *path, mode_t mode) {
    return path_op("mkdir", dirfd, path, call_mkdirat, 0, mode);
}

int close(int fd) {
    if (!tracked(fd)) return real_close(fd);
    pthread_mutex_lock(&lock);
    emit("%d\tclose\t%d\t%s", (int)getpid(), fd, fd_paths[fd]);
    free(fd_paths[fd]);
    fd_paths[fd] = NULL;
    int rc = real_close(fd);
    int saved = errno;
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
