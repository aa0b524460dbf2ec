/* SPDX-License-Identifier: MIT */
/*
 * One process-wide SIGSEGV handler for the mprotect backend. Faults inside a
 * registered target go to its on_fault(), which runs in the signal handler:
 * it must be async-signal-safe and may not take locks. Everything else goes
 * to the handler that was installed before.
 */
#ifndef COHMEM_SEGV_H
#define COHMEM_SEGV_H

#include <stdbool.h>
#include <stdint.h>

struct segv_target {
	uintptr_t start, end;
	/* A write-protection fault at addr: true when handled (the write may retry). */
	bool (*on_fault)(struct segv_target *t, uintptr_t addr);
};

/* Installs the handler on first use. 0 or -errno; targets never overlap. */
int segv_register(struct segv_target *t);
/* On return no handler is still using t: it may be freed. */
void segv_unregister(struct segv_target *t);

#endif /* COHMEM_SEGV_H */
