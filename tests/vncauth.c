/* SPDX-License-Identifier: MIT */
/*
 * tools/vncauth.c: wrong passwords are slowed by address — free tries,
 * then waits that double to a bound; the right password clears the record;
 * addresses are kept apart and the record is bounded.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "vncauth.h"

/* Each test its own addresses: the record is the process's. */
Test(vncauth, the_first_wrong_passwords_are_free)
{
	for (int i = 0; i < VNCAUTH_FREE_TRIES; i++) {
		cr_expect_eq(vnc_auth_may_try("10.0.0.1", 100.0 + i), 0, "try %d", i);
		vnc_auth_record("10.0.0.1", false, 100.0 + i);
	}
	cr_expect_eq(vnc_auth_may_try("10.0.0.1", 103.0), 0);
}

Test(vncauth, then_each_wrong_one_doubles_the_wait_to_a_bound)
{
	double t = 1000;
	long wait = 0, expect = VNCAUTH_FIRST_WAIT;

	for (int i = 0; i < VNCAUTH_FREE_TRIES; i++)
		vnc_auth_record("10.0.0.2", false, t);
	for (int i = 0; i < 10; i++) {
		vnc_auth_record("10.0.0.2", false, t);
		wait = vnc_auth_may_try("10.0.0.2", t);
		/* the seconds left, rounded up */
		cr_expect(wait >= expect && wait <= expect + 1, "wrong %d: %ld s to wait, not %ld", i + 4, wait, expect);
		cr_expect_eq(vnc_auth_may_try("10.0.0.2", t + (double)expect + 0.5), 0, "and no more");
		t += (double)expect + 1;
		expect = expect * 2 > VNCAUTH_LONGEST_WAIT ? VNCAUTH_LONGEST_WAIT : expect * 2;
	}
	cr_expect_eq(expect, VNCAUTH_LONGEST_WAIT);
}

Test(vncauth, the_right_password_clears_the_record)
{
	for (int i = 0; i <= VNCAUTH_FREE_TRIES; i++)
		vnc_auth_record("10.0.0.3", false, 50.0);
	cr_expect_gt(vnc_auth_may_try("10.0.0.3", 50.0), 0);
	vnc_auth_record("10.0.0.3", true, 60.0);
	vnc_auth_record("10.0.0.3", false, 60.0);
	cr_expect_eq(vnc_auth_may_try("10.0.0.3", 60.0), 0, "a fresh start: one wrong one is free again");
}

Test(vncauth, one_address_waiting_does_not_make_another_wait)
{
	for (int i = 0; i <= VNCAUTH_FREE_TRIES; i++)
		vnc_auth_record("10.0.0.4", false, 10.0);
	cr_expect_gt(vnc_auth_may_try("10.0.0.4", 10.0), 0);
	cr_expect_eq(vnc_auth_may_try("10.0.0.5", 10.0), 0);
}

Test(vncauth, the_record_is_bounded_and_forgets_the_oldest)
{
	char host[32];

	for (int i = 0; i <= VNCAUTH_FREE_TRIES; i++)
		vnc_auth_record("10.1.0.0", false, 1.0);
	cr_expect_gt(vnc_auth_may_try("10.1.0.0", 1.0), 0);
	for (int a = 1; a <= VNCAUTH_ADDRESSES; a++) {
		snprintf(host, sizeof(host), "10.1.%d.%d", a / 256, a % 256);
		vnc_auth_record(host, false, 2.0 + a);
	}
	cr_expect_eq(vnc_auth_may_try("10.1.0.0", 1.0), 0, "the oldest of %d+1 addresses is forgotten",
		     VNCAUTH_ADDRESSES);
}
