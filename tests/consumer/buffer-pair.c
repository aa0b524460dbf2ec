/*
 * Two processes share a cohmemd buffer: a child maps it MAP_SHARED and writes
 * pages 3 and 7, then exits; the parent, which opened the buffer first, must
 * get exactly those pages from cohmem_buffer_clean(), and their bytes.
 * Usage: buffer-pair MOUNT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cohmem-buffer.h>

#define PAGES 16

int main(int argc, char *argv[])
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	unsigned long bitmap = 0;
	char path[4096], byte;
	int fd, status;
	long n;
	pid_t child;

	if (argc != 2)
		return 2;
	snprintf(path, sizeof(path), "%s/buffer-pair", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(PAGES * ps)) || cohmem_buffer_clean(fd, 0, PAGES, 0, &bitmap, NULL, NULL) < 0) {
		perror("buffer-pair: setup");
		return 1;
	}
	bitmap = 0;
	child = fork();
	if (child == 0) {
		int cfd = open(path, O_RDWR);
		char *mem = cfd < 0 ? MAP_FAILED : mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);

		if (mem == MAP_FAILED)
			_exit(1);
		mem[3 * ps + 1] = 'a';
		mem[7 * ps + 2] = 'b';
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "buffer-pair: the writer failed\n");
		return 1;
	}
	n = cohmem_buffer_clean(fd, 0, PAGES, 0, &bitmap, NULL, NULL);
	if (n != 2 || bitmap != (1UL << 3 | 1UL << 7)) {
		fprintf(stderr, "buffer-pair: clean returned %ld, bitmap %#lx (want 2, 0x88)\n", n, bitmap);
		return 1;
	}
	if (pread(fd, &byte, 1, (off_t)(7 * ps + 2)) != 1 || byte != 'b') {
		fprintf(stderr, "buffer-pair: the writer's byte is not in the buffer\n");
		return 1;
	}
	printf("buffer-pair: the other process's pages 3 and 7 reported, and their bytes read back\n");
	close(fd);
	unlink(path);
	return 0;
}
