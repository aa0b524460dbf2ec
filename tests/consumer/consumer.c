/* Tracks one write through an installed libcohmem; every installed header compiles on its own. */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cohmem.h>
#include <cohmem-buffer.h>
#include <cohmem-fb.h>
#include <cohmem-pfn.h>

int main(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	char *mem = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long bitmap = 0;
	cohmem_tracker *t;
	cohmem_region *r;

	if (mem == MAP_FAILED || cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t) ||
	    cohmem_region_add(t, mem, 4 * ps, 0, &r))
		return 1;
	mem[2 * ps] = 1;
	if (cohmem_region_clean(r, 0, 4, 0, &bitmap, NULL, NULL) != 1 || bitmap != 1UL << 2)
		return 1;
	if (cohmem_pfn_open(0, 0) != -EINVAL || COHMEM_PFN_METHOD_PAGETABLE == COHMEM_PFN_METHOD_MKWRITE)
		return 1;
	printf("consumer: page 2 reported by %s\n", cohmem_backend_name(cohmem_region_backend(r)));
	cohmem_tracker_free(t);
	return 0;
}
