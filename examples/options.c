/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cohmem.h"
#include "options.h"

#define MAX_OPTIONS 32

static bool takes_argument(const struct option_spec *s)
{
	return s->type != OPTION_FLAG && s->type != OPTION_CLEAR;
}

static const char *argument_name(const struct option_spec *s)
{
	switch (s->type) {
	case OPTION_STRING:
		return "TEXT";
	case OPTION_BACKEND:
		return "NAME";
	case OPTION_FLAG:
	case OPTION_CLEAR:
		return "";
	default:
		return "N";
	}
}

/* The value before parsing, as --help shows it; "" when there is nothing to show. */
static void default_text(const struct option_spec *s, char *out, size_t len)
{
	*out = '\0';
	switch (s->type) {
	case OPTION_UNSIGNED:
		snprintf(out, len, " (default %u)", *(unsigned *)s->value);
		break;
	case OPTION_SIZE:
		snprintf(out, len, " (default %zu)", *(size_t *)s->value);
		break;
	case OPTION_INT:
		snprintf(out, len, " (default %d)", *(int *)s->value);
		break;
	case OPTION_STRING:
		if (*(const char **)s->value)
			snprintf(out, len, " (default %s)", *(const char **)s->value);
		break;
	case OPTION_BACKEND:
		snprintf(out, len, " (default %s)", cohmem_backend_name(*(enum cohmem_backend *)s->value));
		break;
	default:
		break;
	}
}

static void usage(FILE *out, const char *about, const struct option_spec *specs)
{
	fprintf(out, "%s\n", about);
	for (const struct option_spec *s = specs; s->name; s++) {
		char flag[40], def[64];

		snprintf(flag, sizeof(flag), "--%s %s", s->name, argument_name(s));
		default_text(s, def, sizeof(def));
		if (s->short_name)
			fprintf(out, "  -%c, %-22s %s%s\n", s->short_name, flag, s->help, def);
		else
			fprintf(out, "      %-22s %s%s\n", flag, s->help, def);
	}
	fprintf(out, "  -h, %-22s this text\n", "--help");
}

static bool parse_unsigned(const char *arg, uintmax_t max, uintmax_t *ret)
{
	char *end;

	errno = 0;
	*ret = strtoumax(arg, &end, 0);
	return *arg && *arg != '-' && !*end && !errno && *ret <= max;
}

/* 0, or -EINVAL for an argument that is not a value of the option's type. */
static int store(const struct option_spec *s, const char *arg)
{
	uintmax_t n;

	switch (s->type) {
	case OPTION_UNSIGNED:
		if (!parse_unsigned(arg, UINT_MAX, &n))
			return -EINVAL;
		*(unsigned *)s->value = (unsigned)n;
		return 0;
	case OPTION_SIZE:
		if (!parse_unsigned(arg, SIZE_MAX, &n))
			return -EINVAL;
		*(size_t *)s->value = (size_t)n;
		return 0;
	case OPTION_INT:
		if (!parse_unsigned(arg, INT_MAX, &n))
			return -EINVAL;
		*(int *)s->value = (int)n;
		return 0;
	case OPTION_FLAG:
		*(bool *)s->value = true;
		return 0;
	case OPTION_CLEAR:
		*(bool *)s->value = false;
		return 0;
	case OPTION_STRING:
		*(const char **)s->value = arg;
		return 0;
	case OPTION_BACKEND:
		return cohmem_backend_from_name(arg, s->value);
	}
	return -EINVAL;
}

int options_parse(const char *about, const struct option_spec *specs, int argc, char *argv[])
{
	struct option longopts[MAX_OPTIONS + 2];
	char shortopts[2 * MAX_OPTIONS + 4] = ":h", *at = shortopts + 2;
	size_t n = 0;
	int opt, index;

	for (const struct option_spec *s = specs; s->name && n < MAX_OPTIONS; s++, n++) {
		/* Options without a letter get values past any character. */
		longopts[n] = (struct option){ s->name, takes_argument(s) ? required_argument : no_argument,
					       NULL, s->short_name ? s->short_name : 256 + (int)n };
		if (s->short_name) {
			*at++ = s->short_name;
			if (takes_argument(s))
				*at++ = ':';
		}
	}
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n] = (struct option){ 0 };
	*at = '\0';

	while ((opt = getopt_long(argc, argv, shortopts, longopts, &index)) != -1) {
		const struct option_spec *s = NULL;

		if (opt == 'h') {
			usage(stdout, about, specs);
			return 0;
		}
		for (size_t i = 0; specs[i].name && !s; i++)
			if (opt == (specs[i].short_name ? specs[i].short_name : 256 + (int)i))
				s = &specs[i];
		if (!s) {
			usage(stderr, about, specs);
			return 2;
		}
		if (store(s, optarg)) {
			fprintf(stderr, "%s: --%s: bad value '%s'\n", argv[0], s->name, optarg);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, about, specs);
		return 2;
	}
	return -1;
}

void sleep_ms(unsigned ms)
{
	struct timespec pause = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&pause, NULL);
}
