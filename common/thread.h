/* The calling thread's name (as top -H and /proc show it) and, for work
 * that can wait, a lower CPU priority, so that when the cores are busy
 * the threads answering requests run first. */
#ifndef COMMON_THREAD_H
#define COMMON_THREAD_H

/* name: at most 15 characters; nice: 0 (as it is) to 19 (the lowest). */
void thread_set(const char *name, int nice);

#endif
