/* SPDX-License-Identifier: MIT */
/* Backend names, probing and tracker arguments. */
#include <errno.h>
#include <string.h>

#include "test.h"

TestSuite(api, .timeout = 60);

Test(api, backend_names)
{
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_AUTO), "auto");
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_UFFD_ASYNC), "uffd-async");
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_UFFD_SYNC), "uffd-sync");
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_SOFT_DIRTY), "soft-dirty");
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_MPROTECT), "mprotect");
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_PFN), "pfn");
	cr_assert_str_eq(cohmem_backend_name(COHMEM_BACKEND_PFN_SCAN), "pfn-scan");
	cr_assert_null(cohmem_backend_name(COHMEM_BACKEND_PFN_SCAN + 1));
	cr_assert_null(cohmem_backend_name((enum cohmem_backend)-1));
}

Test(api, backends_by_name)
{
	enum cohmem_backend b = COHMEM_BACKEND_MPROTECT;

	for (int i = COHMEM_BACKEND_AUTO; cohmem_backend_name(i); i++) {
		cr_assert_eq(cohmem_backend_from_name(cohmem_backend_name(i), &b), 0);
		cr_assert_eq(b, i, "%s", cohmem_backend_name(i));
	}
	b = COHMEM_BACKEND_MPROTECT;
	cr_assert_eq(cohmem_backend_from_name("UFFD-ASYNC", &b), -EINVAL, "names are exact");
	cr_assert_eq(cohmem_backend_from_name("uffd", &b), -EINVAL);
	cr_assert_eq(cohmem_backend_from_name("", &b), -EINVAL);
	cr_assert_eq(cohmem_backend_from_name(NULL, &b), -EINVAL);
	cr_assert_eq(cohmem_backend_from_name("auto", NULL), -EINVAL);
	cr_assert_eq(b, COHMEM_BACKEND_MPROTECT, "left alone on failure");
}

/* Every backend says why it does or does not work here, agreeing with the probe. */
Test(api, backends_explain_themselves)
{
	char why[160], small[8];

	for (int b = COHMEM_BACKEND_AUTO; cohmem_backend_name(b); b++) {
		int err = cohmem_backend_explain(b, why, sizeof(why));

		cr_assert_eq(err, cohmem_backend_supported(b), "%s", cohmem_backend_name(b));
		if (!err)
			cr_assert_str_eq(why, "works");
		else
			cr_assert(strlen(why) > 10 && strcmp(why, "works"), "%s: \"%s\"",
				  cohmem_backend_name(b), why);
	}
	memset(small, 'x', sizeof(small));
	cohmem_backend_explain(COHMEM_BACKEND_MPROTECT, small, sizeof(small));
	cr_assert_str_eq(small, "works");
	memset(small, 'x', sizeof(small));
	cohmem_backend_explain(COHMEM_BACKEND_MPROTECT, small, 3);
	cr_assert_str_eq(small, "wo", "truncated, terminated");
	strcpy(why, "untouched");
	cr_assert_eq(cohmem_backend_explain(COHMEM_BACKEND_PFN_SCAN + 1, why, sizeof(why)), -EINVAL);
	cr_assert_eq(cohmem_backend_explain(COHMEM_BACKEND_MPROTECT, why, 0), -EINVAL);
	cr_assert_eq(cohmem_backend_explain(COHMEM_BACKEND_MPROTECT, NULL, 8), -EINVAL);
	cr_assert_str_eq(why, "untouched");
}

Test(api, bitmap_sizing)
{
	cr_assert_eq(COHMEM_BITS_PER_LONG, 8 * sizeof(unsigned long));
	cr_assert_eq(COHMEM_BITMAP_LONGS(0), 0);
	cr_assert_eq(COHMEM_BITMAP_LONGS(1), 1);
	cr_assert_eq(COHMEM_BITMAP_LONGS(COHMEM_BITS_PER_LONG), 1);
	cr_assert_eq(COHMEM_BITMAP_LONGS(COHMEM_BITS_PER_LONG + 1), 2);
}

Test(api, probing_rejects_values_outside_the_enum)
{
	unsigned caps = 1;

	cr_assert_eq(cohmem_backend_supported(COHMEM_BACKEND_PFN_SCAN + 1), -EINVAL);
	cr_assert_eq(cohmem_backend_capabilities(COHMEM_BACKEND_PFN_SCAN + 1, &caps), -EINVAL);
	cr_assert_eq(cohmem_backend_capabilities(COHMEM_BACKEND_AUTO, &caps), -EINVAL);
	cr_assert_eq(cohmem_backend_capabilities(COHMEM_BACKEND_UFFD_ASYNC, NULL), -EINVAL);
}

Test(api, tracker_new_agrees_with_the_probe)
{
	for (int b = COHMEM_BACKEND_AUTO; cohmem_backend_name(b); b++) {
		cohmem_tracker *t = NULL;
		int supported = cohmem_backend_supported(b);
		int err = cohmem_tracker_new(b, 0, &t);

		cr_assert(supported == 0 || supported == -EOPNOTSUPP);
		cr_assert_eq(err, supported, "%s: new %d, probe %d", cohmem_backend_name(b), err, supported);
		if (!err) {
			cr_assert_eq(cohmem_tracker_backend(t), b);
			cohmem_tracker_free(t);
		} else {
			cr_assert_null(t, "nothing is returned on failure");
		}
	}
}

Test(api, capabilities_agree_with_the_probe)
{
	for (int b = COHMEM_BACKEND_AUTO + 1; cohmem_backend_name(b); b++) {
		unsigned caps = ~0u;
		int err = cohmem_backend_capabilities(b, &caps);

		cr_assert_eq(err, cohmem_backend_supported(b));
		if (err)
			cr_assert_eq(caps, 0);
		else
			cr_assert_neq(caps & (COHMEM_CAP_ANON | COHMEM_CAP_SHMEM | COHMEM_CAP_FILE | COHMEM_CAP_PFNMAP), 0,
				      "%s tracks some memory", cohmem_backend_name(b));
	}
}

Test(api, tracker_new_bad_arguments)
{
	cohmem_tracker *t = NULL;

	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, NULL), -EINVAL);
	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 1, &t), -EINVAL);
	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_PFN_SCAN + 1, 0, &t), -EINVAL);
	cr_assert_null(t);
}

Test(api, null_objects)
{
	cohmem_tracker_free(NULL);
	cr_assert_eq(cohmem_region_remove(NULL), 0);
	cr_assert_eq(cohmem_tracker_backend(NULL), COHMEM_BACKEND_AUTO);
	cr_assert_eq(cohmem_region_backend(NULL), COHMEM_BACKEND_AUTO);
}

Test(api, tracker_capabilities)
{
	unsigned caps = 0, backend_caps;
	cohmem_tracker *t;

	for (int b = COHMEM_BACKEND_AUTO + 1; cohmem_backend_name(b); b++) {
		if (cohmem_tracker_new(b, 0, &t))
			continue;
		cr_assert_eq(cohmem_tracker_capabilities(t, &caps), 0);
		cr_assert_eq(cohmem_backend_capabilities(b, &backend_caps), 0);
		cr_assert_eq(caps, backend_caps, "%s", cohmem_backend_name(b));
		cohmem_tracker_free(t);
	}
	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t), 0);
	cr_assert_eq(cohmem_tracker_capabilities(t, &caps), 0);
	cr_assert_neq(caps & COHMEM_CAP_ANON, 0);
	cr_assert_neq(caps & COHMEM_CAP_EXACT_CONCURRENT, 0, "AUTO without the quiescent flag stays exact");
	cr_assert_eq(cohmem_tracker_capabilities(t, NULL), -EINVAL);
	cr_assert_eq(cohmem_tracker_capabilities(NULL, &caps), -EINVAL);
	cohmem_tracker_free(t);
}
