/* LD_PRELOAD shim: steps the wall clock of a process while it runs.
 *
 * clock_gettime(CLOCK_REALTIME[_COARSE]) returns the real time plus an offset in nanoseconds
 * read from CLOCKSTEP_FILE (a native int64 at offset 0). Every other clock, CLOCK_MONOTONIC
 * first of all, passes through untouched: that is the point of the test. The file is mapped
 * shared, so a write by the test is seen at the next call without a system call per call (the
 * recorder stamps every message with the wall clock). Python's time.time(), time.time_ns() and
 * datetime.now() all read CLOCK_REALTIME through clock_gettime, so that one call is enough.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static const volatile int64_t *offset_ns;

__attribute__((constructor)) static void clockstep_init(void) {
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("CLOCKSTEP_FILE");
    if (path == NULL)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    void *map = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED)
        offset_ns = map;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (real_clock_gettime == NULL) /* called before the constructor ran */
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real_clock_gettime(id, ts);
    if (rc != 0 || offset_ns == NULL || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE))
        return rc;
    int64_t shifted = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec
                      + __atomic_load_n(offset_ns, __ATOMIC_RELAXED);
    ts->tv_sec = shifted / 1000000000;
    ts->tv_nsec = shifted % 1000000000;
    if (ts->tv_nsec < 0) {
        ts->tv_nsec += 1000000000;
        ts->tv_sec -= 1;
    }
    return rc;
}
