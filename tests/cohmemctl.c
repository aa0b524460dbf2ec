/* SPDX-License-Identifier: MIT */
/* cohmemctl probe tells the truth: its JSON agrees with the library, and it exits as documented. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char tool[PATH_MAX];

static void find_tool(void)
{
	ssize_t n = readlink("/proc/self/exe", tool, sizeof(tool) - 32);

	cr_assert_gt(n, 0);
	tool[n] = '\0';
	strcpy(strrchr(tool, '/') + 1, "../tools/cohmemctl");
}

/* Run cohmemctl with args; its stdout into out (NUL-terminated); returns the exit status. */
static int run(const char *args, char *out, size_t len)
{
	char cmd[PATH_MAX + 64];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", tool, args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	return WEXITSTATUS(pclose(p));
}

TestSuite(cohmemctl, .init = find_tool, .timeout = 60);

Test(cohmemctl, probe_json_agrees_with_the_library)
{
	static char out[16384];
	char want[128];
	long depth = 0;

	cr_assert_eq(run("probe --json", out, sizeof(out)), 0, "a backend works here: exit 0");
	cr_assert_eq(out[0], '{');
	for (const char *c = out; *c; c++) {
		if (*c == '"')	/* skip strings, escapes included */
			for (c++; *c && *c != '"'; c++)
				c += *c == '\\';
		depth += (*c == '{' || *c == '[') - (*c == '}' || *c == ']');
		cr_assert_geq(depth, 0);
	}
	cr_assert_eq(depth, 0, "balanced");
	for (int b = COHMEM_BACKEND_AUTO + 1; cohmem_backend_name(b); b++) {
		snprintf(want, sizeof(want), "\"%s\": { \"supported\": %s", cohmem_backend_name(b),
			 cohmem_backend_supported(b) ? "false" : "true");
		cr_assert_not_null(strstr(out, want), "missing: %s", want);
	}
	cr_assert_not_null(strstr(out, "\"any_backend\": true"));
}

Test(cohmemctl, probe_names_what_auto_chooses)
{
	static char out[16384];
	struct tracked x = tracked_anon(4);
	char want[128];

	cr_assert_eq(run("probe", out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "anonymous                      %s / ",
		 cohmem_backend_name(cohmem_region_backend(x.r)));
	cr_assert_not_null(strstr(out, want), "missing: %s\n%s", want, out);
	tracked_free(&x);
}

Test(cohmemctl, bad_usage)
{
	char out[1024];

	cr_assert_eq(run("", out, sizeof(out)), 2);
	cr_assert_eq(run("frobnicate", out, sizeof(out)), 2);
	cr_assert_eq(run("probe --bogus", out, sizeof(out)), 2);
	cr_assert_eq(run("--help", out, sizeof(out)), 0);
	cr_assert_not_null(strstr(out, "Usage: cohmemctl"));
}
