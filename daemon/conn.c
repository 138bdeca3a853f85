/*
 * conn.c - one client connection: who it is (SO_PEERCRED), reading frames,
 * writing events, closing.
 *
 * A frame that is not well-formed, or longer than max_frame_bytes, gets an
 * error event and the connection is closed (its stream cannot be trusted);
 * a well-formed request the server refuses gets an error event and the
 * connection stays.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/ktxd.h"
#include "daemon/log.h"

struct write_req {
	uv_write_t req;
	struct conn *c;
	unsigned char *frame;
	size_t len;
};

/* Whether the peer is an administrator: root, or in admin_group (primary
 * or supplementary, read from the socket: SO_PEERGROUPS never blocks). */
static bool
peer_is_admin(struct server *srv, int fd, uid_t uid, gid_t gid)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	size_t i;

	if (uid == 0)
		return true;
	if (!srv->have_admin_gid)
		return false;
	if (gid == srv->admin_gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
		return false;
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == srv->admin_gid)
			return true;
	return false;
}

static void
on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	ktx_frame_reader_free(c->reader);
	free(c);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	uv_close((uv_handle_t *)req->handle, on_closed);
	free(req);
}

void
conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	uv_shutdown_t *req;

	if (c->closing)
		return;
	c->closing = true;
	jobs_conn_gone(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->n_conns--;
	uv_read_stop((uv_stream_t *)&c->pipe);
	/* Let queued events (a last error) go out first, unless the peer is
	 * not reading at all. */
	if (!c->stalled && (req = calloc(1, sizeof(*req))) != NULL) {
		if (uv_shutdown(req, (uv_stream_t *)&c->pipe, on_shutdown) == 0)
			return;
		free(req);
	}
	uv_close((uv_handle_t *)&c->pipe, on_closed);
}

static void
on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;

	w->c->out_bytes -= w->len;
	(void)status; /* a failed write shows up as a read error or EOF */
	free(w->frame);
	free(w);
}

static void
on_reap(uv_idle_t *idle)
{
	struct server *srv = idle->data;
	struct conn *c, *next;

	uv_idle_stop(idle);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->stalled)
			conn_close(c);
	}
}

void
conn_abort(struct conn *c)
{
	c->stalled = true;
	c->srv->reaper.data = c->srv;
	uv_idle_start(&c->srv->reaper, on_reap);
}

void
conn_send(struct conn *c, const struct ktx_msg *m)
{
	struct ktx_proto_err perr;
	struct write_req *w;
	uv_buf_t buf;

	if (c->closing || c->stalled)
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		goto fail;
	if (ktx_proto_encode(m, KTX_PROTO_EVENT_FRAME_MAX, &w->frame, &w->len, &perr) != 0) {
		log_error("cannot encode a %s event: %s", ktx_msg_type_name(m->type), perr.msg);
		free(w);
		return;
	}
	w->c = c;
	buf = uv_buf_init((char *)w->frame, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, on_written) != 0) {
		free(w->frame);
		free(w);
		conn_abort(c);
		return;
	}
	c->out_bytes += w->len;
	return;
fail:
	log_error("out of memory sending to uid %u", (unsigned)c->uid);
	conn_abort(c);
}

void
conn_error(struct conn *c, uint64_t req, int code, int64_t job, const char *fmt, ...)
{
	char text[KTX_PROTO_LINE_MAX];
	struct ktx_msg m;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ktx_msg_init(&m, KTX_EV_ERROR, req);
	ktx_msg_set_str(&m, KTX_F_CODE, ktx_code_name(code));
	ktx_msg_set_str(&m, KTX_F_MESSAGE, text);
	if (job > 0)
		ktx_msg_set_uint(&m, KTX_F_JOB, (uint64_t)job);
	conn_send(c, &m);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[64 * 1024]; /* the loop reads one connection at a time */

	(void)h;
	(void)suggested;
	*buf = uv_buf_init(slab, sizeof(slab));
}

/* Decodes one complete frame and acts on it; false when the connection must close. */
static bool
on_frame(struct conn *c, const unsigned char *frame, size_t len)
{
	struct ktx_proto_err perr;
	struct ktx_msg m;
	int rc;

	rc = ktx_proto_decode(frame, len, 1, &c->srv->limits, &m, &perr);
	if (rc != 0) {
		conn_error(c, m.id, rc, 0, "%s", perr.msg);
		log_debug("uid %u: refused a frame: %s", (unsigned)c->uid, perr.msg);
		return rc != KTX_CODE_BAD_FRAME;
	}
	if (!c->hello && m.type != KTX_OP_HELLO) {
		conn_error(c, m.id, KTX_CODE_VERSION, 0,
		    "the first request must be hello with the protocol version (%d)",
		    KTX_PROTO_VERSION);
		ktx_msg_clear(&m);
		return false;
	}
	ops_handle(c, &m);
	ktx_msg_clear(&m);
	return !c->closing;
}

/*
 * False when c's user holds too many bytes of unfinished frames: the frame
 * reader only buffers what arrives, but many connections each holding most
 * of a large frame would add up.
 */
static bool
buffered_ok(struct conn *c)
{
	struct server *srv = c->srv;
	uint64_t cap = USER_BUFFERED_MAX, sum = 0;
	struct conn *o;

	c->in_bytes = ktx_frame_reader_pending(c->reader);
	if (c->in_bytes == 0)
		return true;
	if (2 * srv->cfg->max_frame_bytes > cap)
		cap = 2 * srv->cfg->max_frame_bytes;
	for (o = srv->conns; o != NULL; o = o->next)
		if (o->uid == c->uid)
			sum += o->in_bytes;
	return sum <= cap;
}

static void
on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	struct ktx_proto_err perr;
	const unsigned char *frame, *p = (const unsigned char *)buf->base;
	size_t left, used, flen;
	int rc;

	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("uid %u: read error: %s", (unsigned)c->uid, uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	left = (size_t)nread;
	while (left > 0 && !c->closing) {
		rc = ktx_frame_reader_feed(c->reader, p, left, &used, &frame, &flen, &perr);
		if (rc != 0) {
			conn_error(c, 0, rc, 0, "%s", perr.msg);
			log_debug("uid %u: %s", (unsigned)c->uid, perr.msg);
			conn_close(c);
			return;
		}
		p += used;
		left -= used;
		if (frame != NULL && !on_frame(c, frame, flen)) {
			conn_close(c);
			return;
		}
	}
	if (!c->closing && !buffered_ok(c)) {
		conn_error(c, 0, KTX_CODE_BUSY, 0,
		    "your connections hold too much of unfinished requests; send whole frames");
		log_warning("uid %u: too many bytes of unfinished frames; dropping a connection",
		    (unsigned)c->uid);
		conn_close(c);
	}
}

/* Counts the live connections of uid. */
static unsigned
conns_of(struct server *srv, uid_t uid)
{
	struct conn *c;
	unsigned n = 0;

	for (c = srv->conns; c != NULL; c = c->next)
		n += c->uid == uid;
	return n;
}

void
conn_accept(struct server *srv)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	uv_os_fd_t fd;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_error("out of memory accepting a connection");
		return;
	}
	c->srv = srv;
	uv_pipe_init(srv->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    (c->reader = ktx_frame_reader_new((uint32_t)srv->cfg->max_frame_bytes)) == NULL) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->pipe, on_closed);
		return;
	}
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->admin = peer_is_admin(srv, fd, cred.uid, cred.gid);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	if (srv->n_conns > CONN_MAX || conns_of(srv, c->uid) > CONN_PER_USER) {
		conn_error(c, 0, KTX_CODE_BUSY, 0,
		    "too many connections (at most %d, %d per user); close some and retry",
		    CONN_MAX, CONN_PER_USER);
		conn_close(c);
		return;
	}
	if (srv->state == SRV_STOPPING) {
		conn_error(c, 0, KTX_CODE_UNAVAILABLE, 0, "ktxd is shutting down");
		conn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}
