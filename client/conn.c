/*
 * conn.c - ktxctl's blocking connection to ktxd: connect, hello, send a
 * request, read the events that answer it.
 *
 * One request is in flight at a time, so a plain blocking socket and the
 * protocol's frame reader are all it takes.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/ktxctl.h"

struct conn {
	int fd;
	const char *path;
	uint64_t next_id;
	uint32_t prompt_max;
	uint32_t frame_max;       /* the largest request ktxd reads */
	struct ktx_frame_reader *reader;
	unsigned char buf[65536];
	size_t off, len;          /* unconsumed bytes of buf */
};

/* Writes all of buf; EPIPE and friends mean ktxd went away. */
static int
write_all(struct conn *c, const unsigned char *buf, size_t len, struct cerr *e)
{
	ssize_t n;

	while (len > 0) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cerr_set(e, KTXCTL_EXIT_PROTOCOL, "ktxd closed the connection at %s: "
			    "%s", c->path, strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
conn_send(struct conn *c, struct ktx_msg *req, uint64_t *id, struct cerr *e)
{
	struct ktx_proto_err perr;
	unsigned char *frame;
	size_t len;
	int rc;

	req->id = c->next_id++;
	if (id != NULL)
		*id = req->id;
	if (ktx_proto_encode(req, c->frame_max, &frame, &len, &perr) != 0)
		return cerr_set(e, perr.code == KTX_CODE_TOO_LARGE ? KTXCTL_EXIT_TOO_LARGE :
		    KTXCTL_EXIT_USAGE, "%s", perr.msg);
	rc = write_all(c, frame, len, e);
	free(frame);
	return rc;
}

/* Reads the next frame of any id into m. */
static int
read_event(struct conn *c, struct ktx_msg *m, struct cerr *e)
{
	struct ktx_proto_limits l;
	struct ktx_proto_err perr;
	const unsigned char *frame;
	size_t used, flen;
	ssize_t n;
	int rc;

	ktx_proto_limits_default(&l);
	l.frame_max = KTX_PROTO_EVENT_FRAME_MAX;
	l.text_max = KTX_PROTO_EVENT_FRAME_MAX;
	for (;;) {
		while (c->off < c->len) {
			rc = ktx_frame_reader_feed(c->reader, c->buf + c->off, c->len - c->off, &used,
			    &frame, &flen, &perr);
			if (rc != 0)
				return cerr_set(e, KTXCTL_EXIT_PROTOCOL, "bad frame from ktxd: %s",
				    perr.msg);
			c->off += used;
			if (frame == NULL)
				continue;
			if (ktx_proto_decode(frame, flen, 0, &l, m, &perr) != 0)
				return cerr_set(e, KTXCTL_EXIT_PROTOCOL, "bad event from ktxd: %s",
				    perr.msg);
			return 0;
		}
		n = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cerr_set(e, KTXCTL_EXIT_PROTOCOL, "reading from ktxd at %s: %s",
			    c->path, strerror(errno));
		if (n == 0)
			return cerr_set(e, KTXCTL_EXIT_PROTOCOL, "ktxd closed the connection at %s "
			    "before answering (did it stop?)", c->path);
		c->off = 0;
		c->len = (size_t)n;
	}
}

int
conn_next(struct conn *c, uint64_t id, struct ktx_msg *m, struct cerr *e)
{
	int rc;

	for (;;) {
		rc = read_event(c, m, e);
		if (rc != 0)
			return rc;
		if (m->id == id)
			return 0;
		if (m->id == 0 && m->type == KTX_EV_ERROR) {
			/* About the whole connection: ktxd is about to close it. */
			rc = cerr_from_event(e, m);
			ktx_msg_clear(m);
			return rc;
		}
		ktx_msg_clear(m); /* an answer to nothing we are waiting for */
	}
}

/* Says hello and reads the welcome. */
static int
conn_hello(struct conn *c, struct cerr *e)
{
	struct ktx_msg m;
	uint64_t id;
	int rc;

	ktx_msg_init(&m, KTX_OP_HELLO, 0);
	ktx_msg_set_uint(&m, KTX_F_VERSION, KTX_PROTO_VERSION);
	ktx_msg_set_str(&m, KTX_F_CLIENT, "ktxctl " PACKAGE_VERSION);
	rc = conn_send(c, &m, &id, e);
	if (rc != 0)
		return rc;
	rc = conn_next(c, id, &m, e);
	if (rc != 0)
		return rc;
	if (m.type == KTX_EV_ERROR)
		rc = cerr_from_event(e, &m);
	else if (m.type != KTX_EV_WELCOME)
		rc = cerr_set(e, KTXCTL_EXIT_PROTOCOL, "ktxd answered hello with \"%s\"",
		    ktx_msg_type_name(m.type));
	else {
		c->prompt_max = (uint32_t)ktx_msg_get_uint(&m, KTX_F_PROMPT_MAX,
		    KTX_PROTO_PROMPT_MAX_DEFAULT);
		c->frame_max = (uint32_t)ktx_msg_get_uint(&m, KTX_F_FRAME_MAX,
		    KTX_PROTO_FRAME_MAX_DEFAULT);
	}
	ktx_msg_clear(&m);
	return rc;
}

int
conn_open(const char *path, struct conn **out, struct cerr *e)
{
	struct sockaddr_un sa;
	struct conn *c;
	int rc;

	*out = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return cerr_set(e, KTXCTL_EXIT_USAGE, "socket path %s is longer than %zu bytes",
		    path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path));
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return cerr_set(e, KTXCTL_EXIT_CONNECT, "out of memory");
	c->path = path;
	c->next_id = 1;
	c->frame_max = KTX_PROTO_FRAME_MAX_DEFAULT;
	c->reader = ktx_frame_reader_new(KTX_PROTO_EVENT_FRAME_MAX);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->reader == NULL || c->fd < 0) {
		rc = cerr_set(e, KTXCTL_EXIT_CONNECT, "cannot create a socket: %s",
		    strerror(errno));
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == ENOENT)
			rc = cerr_set(e, KTXCTL_EXIT_CONNECT, "ktxd is not running: no socket at %s",
			    path);
		else if (errno == ECONNREFUSED)
			rc = cerr_set(e, KTXCTL_EXIT_CONNECT, "ktxd is not running: nothing "
			    "listens on %s", path);
		else if (errno == EACCES || errno == EPERM)
			rc = cerr_set(e, KTXCTL_EXIT_CONNECT, "cannot connect to ktxd at %s: "
			    "permission denied (is your user in the ktx group?)", path);
		else
			rc = cerr_set(e, KTXCTL_EXIT_CONNECT, "cannot connect to ktxd at %s: %s",
			    path, strerror(errno));
		goto fail;
	}
	rc = conn_hello(c, e);
	if (rc != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	conn_close(c);
	return rc;
}

void
conn_close(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	ktx_frame_reader_free(c->reader);
	free(c);
}

uint32_t
conn_prompt_max(const struct conn *c)
{
	return c->prompt_max;
}
