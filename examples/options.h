/* SPDX-License-Identifier: MIT */
/*
 * The examples' command lines, from one table per program: getopt_long()'s
 * options, its short-option string and the --help text all come from the
 * same entries, so they cannot disagree. Numbers are checked (no trailing
 * junk, no overflow); backends are looked up by cohmem_backend_from_name().
 */
#ifndef COHMEM_EXAMPLE_OPTIONS_H
#define COHMEM_EXAMPLE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum option_type {
	OPTION_UNSIGNED,	/* unsigned * */
	OPTION_SIZE,		/* size_t * */
	OPTION_INT,		/* int *, >= 0 */
	OPTION_FLAG,		/* bool *: set, takes no argument */
	OPTION_CLEAR,		/* bool *: cleared, takes no argument */
	OPTION_STRING,		/* const char ** */
	OPTION_BACKEND,		/* enum cohmem_backend * */
};

struct option_spec {
	const char *name;	/* long name; NULL ends the table */
	char short_name;	/* 0: long only */
	enum option_type type;
	void *value;		/* where it goes; its value before parsing is the default --help shows */
	const char *help;
};

/* The options every framebuffer example has, by the same letters. */
#define OPTION_WIDTH(v)     { "width", 'W', OPTION_UNSIGNED, v, "pixels" }
#define OPTION_HEIGHT(v)    { "height", 'H', OPTION_UNSIGNED, v, "pixels" }
#define OPTION_FRAMES(v)    { "frames", 'n', OPTION_UNSIGNED, v, "frames to run" }
#define OPTION_INTERVAL(v)  { "interval", 'i', OPTION_UNSIGNED, v, "milliseconds between frames" }
#define OPTION_MAX_RECTS(v) { "max-rects", 'm', OPTION_SIZE, v, "rectangles per frame at most" }
#define OPTION_BACKEND(v)   { "backend", 'b', OPTION_BACKEND, v, \
			      "auto, uffd-async, uffd-sync, soft-dirty, mprotect or pfn" }
#define OPTION_QUIET(v)     { "quiet", 'q', OPTION_FLAG, v, "totals only" }

/*
 * Parse argv (no operands allowed) by the table, which ends with an entry
 * whose name is NULL; -h/--help is added. about is the usage's first lines.
 * Returns -1 to go on, else the exit status: 0 after --help (printed on
 * stdout), 2 for bad usage (said on stderr).
 */
int options_parse(const char *about, const struct option_spec *specs, int argc, char *argv[]);

/* Milliseconds of sleep. */
void sleep_ms(unsigned ms);

#endif /* COHMEM_EXAMPLE_OPTIONS_H */
