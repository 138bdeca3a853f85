/*
 * tap.h - a tiny Test Anything Protocol emitter for the C unit tests.
 *
 * Each test program prints "ok N - name" / "not ok N - name" lines and a
 * final plan; automake's tap-driver.sh turns them into the suite summary.
 * Header-only on purpose: every test is one small program.
 */
#ifndef KTX_TESTS_TAP_H
#define KTX_TESTS_TAP_H

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count;
static int tap_failed;

/* Records one assertion; prints the formatted name. Returns cond. */
__attribute__((format(printf, 2, 3)))
static int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return cond;
}

/* A diagnostic line, shown in the test's log. */
__attribute__((format(printf, 1, 2)))
static void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

#define tap_is_int(got, want, name)                                          \
	do {                                                                 \
		long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
		if (!tap_ok(tap_g_ == tap_w_, "%s", name))                   \
			tap_diag("got %lld, want %lld", tap_g_, tap_w_);     \
	} while (0)

#define tap_is_str(got, want, name)                                          \
	do {                                                                 \
		const char *tap_g_ = (got), *tap_w_ = (want);                \
		int tap_eq_ = tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0; \
		if (!tap_ok(tap_eq_, "%s", name))                            \
			tap_diag("got \"%s\", want \"%s\"",                  \
			    tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)"); \
	} while (0)

#define tap_near(got, want, tol, name)                                       \
	do {                                                                 \
		double tap_g_ = (got), tap_w_ = (want);                      \
		if (!tap_ok(fabs(tap_g_ - tap_w_) <= (tol), "%s", name))     \
			tap_diag("got %.9g, want %.9g (tol %g)", tap_g_, tap_w_, \
			    (double)(tol));                                  \
	} while (0)

/* Prints the plan; the exit status says whether everything passed. */
static int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
