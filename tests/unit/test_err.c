/* test_err.c - the engine's error convention (engine/err.h). */
#include "engine/err.h"
#include "tests/tap.h"

int
main(void)
{
	struct ktx_err err;
	int rc;

	ktx_err_clear(&err);
	tap_is_int(err.code, KTX_OK, "cleared error has code OK");
	tap_is_str(err.msg, "", "cleared error has no message");
	rc = ktx_err_set(&err, KTX_EFORMAT, "tensor '%s' is %d bytes short", "blk.0.attn_q.weight", 12);
	tap_is_int(rc, KTX_EFORMAT, "ktx_err_set returns the code it was given");
	tap_is_int(err.code, KTX_EFORMAT, "ktx_err_set stores the code");
	tap_is_str(err.msg, "tensor 'blk.0.attn_q.weight' is 12 bytes short", "message is formatted");
	tap_is_int(ktx_err_set(NULL, KTX_EIO, "x"), KTX_EIO, "a NULL err is allowed");
	char big[2 * KTX_ERR_MSG_MAX];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ktx_err_set(&err, KTX_EINVAL, "%s", big);
	tap_is_int(strlen(err.msg), KTX_ERR_MSG_MAX - 1, "long messages are truncated, not overflowed");
	tap_is_str(ktx_status_name(KTX_ERANGE), "over a limit", "status names");
	return tap_done();
}
