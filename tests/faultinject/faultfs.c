/* An LD_PRELOAD shim that makes the real write and fsync calls on chosen files fail or stall.
 *
 * FAULTFS_MATCH is an fnmatch(3) pattern of absolute paths (e.g. the journal's segment files);
 * FAULTFS_CONTROL names a control file the test rewrites (atomically, by rename) at run time:
 * whitespace-separated settings, any of
 *     fsync=EIO|ENOSPC      fsync and fdatasync fail with that errno
 *     write=EIO|ENOSPC      write and pwrite fail
 *     writev=EIO|ENOSPC     writev and pwritev fail
 *     fsync_delay_ms=N      fsync and fdatasync wait N ms first (a slow disk)
 * An empty or missing file injects nothing. Each injected error appends one line
 * "pid<TAB>call<TAB>errno<TAB>path" to FAULTFS_COUNTS, which the test reads back.
 * The control file is stat()ed on every intercepted call and re-read when it changed, so a
 * switch takes effect at the next call; nothing is looked up while no setting is active.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { FSYNC, WRITE, WRITEV, CLASSES };
static const char *class_names[CLASSES] = {"fsync", "write", "writev"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char match[PATH_MAX];
static char control[PATH_MAX];
static char counts[PATH_MAX];
static int ready;
static struct stat seen;
static int fail_errno[CLASSES];
static long delay_ms;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open)(const char *, int, ...);
static int (*real_close)(int);

__attribute__((constructor)) static void init(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    /* Each name forwards to the same name next in line: another shim's pwrite64 may call the
     * global pwrite, and an alias here would send it back to us for ever. */
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_pwritev64 = dlsym(RTLD_NEXT, "pwritev64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_open = dlsym(RTLD_NEXT, "open64");
    real_close = dlsym(RTLD_NEXT, "close");
    const char *m = getenv("FAULTFS_MATCH");
    const char *c = getenv("FAULTFS_CONTROL");
    const char *n = getenv("FAULTFS_COUNTS");
    if (!m || !c || !n || strlen(m) >= PATH_MAX || strlen(c) >= PATH_MAX || strlen(n) >= PATH_MAX)
        return;
    strcpy(match, m);
    strcpy(control, c);
    strcpy(counts, n);
    ready = 1;
}

static int parse_errno(const char *value) {
    if (strcmp(value, "EIO") == 0) return EIO;
    if (strcmp(value, "ENOSPC") == 0) return ENOSPC;
    if (strcmp(value, "EDQUOT") == 0) return EDQUOT;
    return 0;
}

/* Re-read the control file if it changed since the last call; called with `lock` held. */
static void refresh(void) {
    struct stat now;
    if (stat(control, &now) != 0) {
        memset(&now, 0, sizeof now);
    }
    if (now.st_ino == seen.st_ino && now.st_size == seen.st_size &&
        now.st_mtim.tv_sec == seen.st_mtim.tv_sec && now.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
        return;
    seen = now;
    memset(fail_errno, 0, sizeof fail_errno);
    delay_ms = 0;
    if (now.st_ino == 0) return;
    int fd = real_open(control, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char text[1024];
    ssize_t got = read(fd, text, sizeof text - 1);
    real_close(fd);
    if (got <= 0) return;
    text[got] = 0;
    char *save = NULL;
    for (char *token = strtok_r(text, " \t\r\n", &save); token; token = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(token, '=');
        if (!eq) continue;
        *eq = 0;
        const char *value = eq + 1;
        if (strcmp(token, "fsync_delay_ms") == 0) {
            delay_ms = strtol(value, NULL, 10);
            continue;
        }
        for (int k = 0; k < CLASSES; k++) {
            if (strcmp(token, class_names[k]) == 0) fail_errno[k] = parse_errno(value);
        }
    }
}

static int fd_matches(int fd, char *path) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n < 0) return 0;
    path[n] = 0;
    return fnmatch(match, path, 0) == 0;
}

static void count(int k, int err, const char *path) {
    char line[PATH_MAX + 64];
    int len = snprintf(line, sizeof line, "%d\t%s\t%d\t%s\n", (int)getpid(), class_names[k], err, path);
    int fd = real_open(counts, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    real_write(fd, line, (size_t)len);
    real_close(fd);
}

/* The errno to fail this call with (0: let it through), after any delay it asks for. */
static int decide(int k, int fd) {
    if (!ready) return 0;
    pthread_mutex_lock(&lock);
    refresh();
    int err = fail_errno[k];
    long delay = k == FSYNC ? delay_ms : 0;
    pthread_mutex_unlock(&lock);
    if (!err && !delay) return 0;
    char path[PATH_MAX];
    if (!fd_matches(fd, path)) return 0;
    if (delay) {
        struct timespec pause = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (err) {
        pthread_mutex_lock(&lock);
        count(k, err, path);
        pthread_mutex_unlock(&lock);
    }
    return err;
}

ssize_t write(int fd, const void *buf, size_t size) {
    int err = decide(WRITE, fd);
    if (err) { errno = err; return -1; }
    return real_write(fd, buf, size);
}

ssize_t pwrite(int fd, const void *buf, size_t size, off_t offset) {
    int err = decide(WRITE, fd);
    if (err) { errno = err; return -1; }
    return real_pwrite(fd, buf, size, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t size, off_t offset) {
    int err = decide(WRITE, fd);
    if (err) { errno = err; return -1; }
    return real_pwrite64(fd, buf, size, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int count_) {
    int err = decide(WRITEV, fd);
    if (err) { errno = err; return -1; }
    return real_writev(fd, iov, count_);
}

ssize_t pwritev(int fd, const struct iovec *iov, int count_, off_t offset) {
    int err = decide(WRITEV, fd);
    if (err) { errno = err; return -1; }
    return real_pwritev(fd, iov, count_, offset);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int count_, off_t offset) {
    int err = decide(WRITEV, fd);
    if (err) { errno = err; return -1; }
    return real_pwritev64(fd, iov, count_, offset);
}

int fsync(int fd) {
    int err = decide(FSYNC, fd);
    if (err) { errno = err; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    int err = decide(FSYNC, fd);
    if (err) { errno = err; return -1; }
    return real_fdatasync(fd);
}
