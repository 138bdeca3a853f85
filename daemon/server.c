/*
 * server.c - ktxd's life: the store and queue restored, the listening
 * socket (from systemd or bound here), signals, the worker, sd_notify
 * (READY, STATUS, EXTEND_TIMEOUT_USEC, WATCHDOG, STOPPING) and a clean stop.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon/ktxd.h"
#include "daemon/log.h"

/* How long systemd should wait beyond each loading progress report. */
#define LOAD_EXTEND_USEC 120000000ull
/* STATUS= lines are sent at most this often (the tick sends the latest). */
#define STATUS_EVERY_MS 1000

static void
on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;

	if (status < 0) {
		log_warning("accept: %s", uv_strerror(status));
		return;
	}
	conn_accept(srv);
}

/* Takes the socket systemd passed (socket activation); 1 taken, 0 none, -1 error. */
static int
listen_activated(struct server *srv, struct ktx_err *err)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return 0;
	if (n > 1)
		log_warning("systemd passed %d sockets; using the first", n);
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
		ktx_err_set(err, KTX_EINVAL,
		    "the socket systemd passed is not a listening Unix stream socket");
		return -1;
	}
	if (uv_pipe_open(&srv->listener, SD_LISTEN_FDS_START) != 0) {
		ktx_err_set(err, KTX_EIO, "cannot use the socket systemd passed");
		return -1;
	}
	srv->activated = true;
	return 1;
}

/* Removes a stale socket file at path; refuses when a server answers there. */
static int
clear_stale(const char *path, struct ktx_err *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return ktx_err_set(err, KTX_EINVAL, "%s exists and is not a socket", path);
	if (strlen(path) >= sizeof(sa.sun_path))
		return ktx_err_set(err, KTX_ERANGE, "socket path %s is too long", path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return ktx_err_set(err, KTX_EIO, "socket: %s", strerror(errno));
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return ktx_err_set(err, KTX_EINVAL,
		    "another server is listening on %s; stop it or choose another --socket", path);
	if (unlink(path) != 0)
		return ktx_err_set(err, KTX_EIO, "cannot remove the stale socket %s: %s", path,
		    strerror(errno));
	return 0;
}

/* Binds the configured path under a umask, then sets its group and mode
 * (libuv cannot make a socket group-only by itself). */
static int
listen_bound(struct server *srv, struct ktx_err *err)
{
	const char *path = srv->cfg->socket;
	struct group *gr;
	mode_t old;
	int rc;

	if ((rc = clear_stale(path, err)) != 0)
		return rc;
	old = umask(~srv->cfg->socket_mode & 0777);
	rc = uv_pipe_bind(&srv->listener, path);
	umask(old);
	if (rc != 0)
		return ktx_err_set(err, KTX_EIO, "cannot bind %s: %s", path, uv_strerror(rc));
	if (srv->cfg->socket_group != NULL) {
		if ((gr = getgrnam(srv->cfg->socket_group)) == NULL)
			return ktx_err_set(err, KTX_ENOTFOUND, "socket_group '%s' does not exist",
			    srv->cfg->socket_group);
		if (chown(path, (uid_t)-1, gr->gr_gid) != 0)
			return ktx_err_set(err, KTX_EIO, "cannot give %s to group %s: %s", path,
			    srv->cfg->socket_group, strerror(errno));
	}
	if (chmod(path, srv->cfg->socket_mode) != 0)
		return ktx_err_set(err, KTX_EIO, "cannot chmod %s: %s", path, strerror(errno));
	return 0;
}

void
server_notify_status(struct server *srv)
{
	static const char *const states[] = {"loading", "ready", "stopping"};
	char line[256];
	int64_t now = store_now_ms();
	bool ready_now = false;

	if (srv->state == SRV_LOADING) {
		snprintf(line, sizeof(line), "STATUS=loading %s: %.0f%% %s\nEXTEND_TIMEOUT_USEC=%llu",
		    srv->cfg->model, 100 * srv->progress, srv->progress_what, LOAD_EXTEND_USEC);
	} else if (srv->state == SRV_READY) {
		snprintf(line, sizeof(line), "STATUS=serving %s: %zu waiting, %u running, %.1f tok/s",
		    srv->info.name, sched_len(srv->sched), srv->n_running,
		    jobs_recent_tps(srv));
		ready_now = strncmp(srv->last_status, "STATUS=serving", 14) != 0;
	} else {
		snprintf(line, sizeof(line), "STATUS=%s", states[srv->state]);
	}
	/* READY=1 and STOPPING go out at once; progress and queue lines at most
	 * once per STATUS_EVERY_MS. */
	if (strcmp(line, srv->last_status) == 0 ||
	    (!ready_now && srv->state != SRV_STOPPING &&
		now - srv->last_status_ms < STATUS_EVERY_MS))
		return;
	srv->last_status_ms = now;
	snprintf(srv->last_status, sizeof(srv->last_status), "%s", line);
	if (ready_now)
		sd_notifyf(0, "READY=1\n%s", line);
	else
		sd_notify(0, line);
}

static void
on_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	int64_t now = store_now_ms();

	if (srv->watchdog_usec > 0 &&
	    (uint64_t)(now - srv->last_watchdog_ms) * 1000 >= srv->watchdog_usec / 2) {
		sd_notify(0, "WATCHDOG=1");
		srv->last_watchdog_ms = now;
	}
	server_notify_status(srv);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;

	log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	server_stop(srv, 0);
}

/* Puts a detached job found queued in the store back into the scheduler. */
static int
restore_job(void *ctx, const struct store_job *sj)
{
	struct server *srv = ctx;
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->title = jobs_title(sj->prompt)) == NULL) {
		free(j);
		return KTX_ENOMEM;
	}
	j->id = sj->id;
	j->uid = sj->uid;
	j->detached = true;
	j->conversation = sj->conversation;
	j->created_ms = sj->created_ms;
	if (sched_push(srv->sched, j->id, j->uid) != SCHED_OK) {
		/* Over the configured bounds: it stays queued in the store for the next start. */
		log_warning("job %lld stays in the store: the queue is full", (long long)sj->id);
		free(j->title);
		free(j);
		return 0;
	}
	j->next = srv->jobs;
	if (srv->jobs != NULL)
		srv->jobs->prev = j;
	srv->jobs = j;
	return 0;
}

int
server_start(struct server *srv, uv_loop_t *loop, struct ktxd_config *cfg,
    struct ktx_err *err)
{
	struct gen_params gp;
	struct group *gr;
	unsigned n_int, n_req;
	uint64_t tick_ms;
	int rc;

	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	srv->cfg = cfg;
	srv->state = SRV_LOADING;
	srv->started_ms = store_now_ms();
	/* Every handle exists from here on, so server_stop can close them all. */
	uv_pipe_init(loop, &srv->listener, 0);
	srv->listener.data = srv;
	uv_signal_init(loop, &srv->sigterm);
	uv_signal_init(loop, &srv->sigint);
	srv->sigterm.data = srv->sigint.data = srv;
	uv_timer_init(loop, &srv->tick);
	srv->tick.data = srv;
	uv_async_init(loop, &srv->wake, jobs_on_events);
	srv->wake.data = srv;
	uv_idle_init(loop, &srv->reaper);
	srv->reaper.data = srv;
	ktx_proto_limits_default(&srv->limits);
	srv->limits.frame_max = (uint32_t)cfg->max_frame_bytes;
	srv->limits.text_max = (uint32_t)cfg->max_prompt_bytes;
	if (cfg->admin_group != NULL) {
		if ((gr = getgrnam(cfg->admin_group)) == NULL)
			return ktx_err_set(err, KTX_ENOTFOUND, "admin_group '%s' does not exist",
			    cfg->admin_group);
		srv->admin_gid = gr->gr_gid;
		srv->have_admin_gid = true;
	}
	if ((rc = store_open(cfg->database, &srv->store, err)) != 0)
		return rc;
	if ((rc = store_recover(srv->store, &n_int, &n_req, err)) != 0)
		return rc;
	if (n_int > 0 || n_req > 0)
		log_info("after the last stop: %u jobs interrupted, %u detached jobs re-queued",
		    n_int, n_req);
	if ((srv->sched = sched_new(cfg->queue_max, cfg->queue_per_user)) == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the queue");
	if ((rc = store_jobs_queued(srv->store, restore_job, srv, err)) != 0)
		return rc;
	if (sched_len(srv->sched) > 0)
		log_info("%zu detached jobs waiting from before", sched_len(srv->sched));

	if ((rc = listen_activated(srv, err)) < 0)
		return err->code;
	if (rc == 0 && (rc = listen_bound(srv, err)) != 0)
		return rc;
	if ((rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection)) != 0)
		return ktx_err_set(err, KTX_EIO, "cannot listen: %s", uv_strerror(rc));
	log_info("listening on %s", srv->activated ? "the socket from systemd" : cfg->socket);

	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	if (sd_watchdog_enabled(0, &srv->watchdog_usec) <= 0)
		srv->watchdog_usec = 0;
	/* A tick of a second, or a quarter of the watchdog interval when that is shorter. */
	tick_ms = 1000;
	if (srv->watchdog_usec > 0 && srv->watchdog_usec / 4000 < tick_ms)
		tick_ms = srv->watchdog_usec / 4000 > 10 ? srv->watchdog_usec / 4000 : 10;
	uv_timer_start(&srv->tick, on_tick, 0, tick_ms);

	memset(&gp, 0, sizeof(gp));
	gp.model = cfg->model;
	gp.threads = cfg->threads;
	gp.act_residual = cfg->act_residual;
	gp.cache_type = cfg->cache_type;
	gp.load = cfg->load;
	gp.experts = cfg->experts;
	gp.context = cfg->context;
	if ((rc = worker_new(&gp, &srv->wake, &srv->worker, err)) != 0)
		return rc;
	server_notify_status(srv);
	return 0;
}

void
server_stop(struct server *srv, int exit_code)
{
	bool loading = srv->state == SRV_LOADING && !srv->load_failed;
	struct job *j;

	if (srv->state != SRV_STOPPING) {
		srv->state = SRV_STOPPING;
		srv->exit_code = exit_code;
		sd_notify(0, "STOPPING=1\nSTATUS=stopping");
		if (!uv_is_closing((uv_handle_t *)&srv->listener))
			uv_close((uv_handle_t *)&srv->listener, NULL);
		jobs_shutdown(srv);
		if (srv->n_running > 0) {
			srv->stop_requeue = true;
			for (j = srv->jobs; j != NULL; j = j->next)
				if (j->started_ms != 0)
					worker_cancel(srv->worker, j->id);
			return; /* the last on_end calls back when the worker has let go */
		}
	} else if (srv->n_running > 0) {
		return;
	}
	while (srv->conns != NULL)
		conn_close(srv->conns);
	if (!uv_is_closing((uv_handle_t *)&srv->sigterm)) {
		uv_close((uv_handle_t *)&srv->sigterm, NULL);
		uv_close((uv_handle_t *)&srv->sigint, NULL);
		uv_close((uv_handle_t *)&srv->tick, NULL);
		uv_close((uv_handle_t *)&srv->reaper, NULL);
	}
	if (loading) {
		/* ktx_model_load cannot be interrupted: leave the thread to exit(). */
		uv_unref((uv_handle_t *)&srv->wake);
		srv->worker = NULL;
		return;
	}
	worker_free(srv->worker);
	srv->worker = NULL;
	if (!uv_is_closing((uv_handle_t *)&srv->wake))
		uv_close((uv_handle_t *)&srv->wake, NULL);
}

void
server_free(struct server *srv)
{
	jobs_free_all(srv);
	sched_free(srv->sched);
	store_close(srv->store);
	srv->sched = NULL;
	srv->store = NULL;
}
