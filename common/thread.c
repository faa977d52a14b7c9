#include "common/thread.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

void thread_set(const char *name, int nice)
{
    if (name)
        pthread_setname_np(pthread_self(), name);
    /* on Linux a nice value belongs to the thread (its task id) */
    if (nice > 0)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}
