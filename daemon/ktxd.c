/*
 * ktxd.c - the ktx service: keeps a model resident and answers many users'
 * questions over a Unix socket. Only the command line lives here; see
 * ktxd(8) and ktxd.conf(5).
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/ktxd.h"
#include "daemon/log.h"

#ifndef KTXD_SYSCONFDIR
#define KTXD_SYSCONFDIR "/etc"
#endif
#define KTXD_DEFAULT_CONFIG KTXD_SYSCONFDIR "/ktx/ktxd.conf"

/* Exit statuses (documented in ktxd(8)). */
#define KTXD_EXIT_OK 0
#define KTXD_EXIT_FAIL 1  /* the model, database or socket failed */
#define KTXD_EXIT_USAGE 2 /* bad command line or configuration */

static const char usage_text[] =
    "usage: ktxd [--config FILE] [--model FILE] [--socket PATH] [--database FILE]\n"
    "            [--socket-mode MODE] [--socket-group GROUP] [--threads N]\n"
    "            [--experts N] [--context N] [--vram-headroom SIZE]\n"
    "            [--queue-max N] [--queue-per-user N] [--batch-max N]\n"
    "            [--max-prompt-bytes SIZE] [--max-frame-bytes SIZE]\n"
    "            [--admin-group GROUP] [--log-level LEVEL]\n"
    "       ktxd --help | --version\n"
    "\n"
    "Runs in the foreground and logs to stderr. Each option overrides the key of\n"
    "the same name (with '_' for '-') in the configuration file, by default\n"
    KTXD_DEFAULT_CONFIG " when it exists; see ktxd.conf(5).\n"
    "\n"
    "  -c, --config FILE        read settings from FILE\n"
    "  -m, --model FILE         the GGUF model\n"
    "  -s, --socket PATH        Unix socket when not socket-activated (default /run/ktx/ktxd.sock)\n"
    "  -d, --database FILE      SQLite database of conversations and jobs\n"
    "      --socket-mode MODE   permissions of the socket ktxd binds (default 0660)\n"
    "      --socket-group GROUP group of the socket ktxd binds\n"
    "  -t, --threads N          compute threads (0: all CPUs)\n"
    "      --experts N          routed experts per token (0: the model's)\n"
    "      --context N          context length per conversation (0: engine default)\n"
    "      --vram-headroom SIZE VRAM left free\n"
    "      --queue-max N        waiting jobs, all users\n"
    "      --queue-per-user N   waiting jobs per user\n"
    "      --batch-max N        jobs generated together (1: one at a time)\n"
    "      --max-prompt-bytes SIZE  longest prompt\n"
    "      --max-frame-bytes SIZE   largest request frame\n"
    "      --admin-group GROUP  members see every user's jobs and conversations\n"
    "      --log-level LEVEL    error, warning, info or debug\n"
    "  -h, --help               this text\n"
    "  -V, --version            the version\n"
    "\n"
    "Exit status: 0 stopped cleanly, 1 the model, database or socket failed,\n"
    "2 bad command line or configuration.\n";

/* Options that set a configuration key: option name -> key. */
static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},
	{"model", required_argument, NULL, 'm'},
	{"socket", required_argument, NULL, 's'},
	{"database", required_argument, NULL, 'd'},
	{"threads", required_argument, NULL, 't'},
	{"socket-mode", required_argument, NULL, 0},
	{"socket-group", required_argument, NULL, 0},
	{"experts", required_argument, NULL, 0},
	{"context", required_argument, NULL, 0},
	{"vram-headroom", required_argument, NULL, 0},
	{"queue-max", required_argument, NULL, 0},
	{"queue-per-user", required_argument, NULL, 0},
	{"batch-max", required_argument, NULL, 0},
	{"max-prompt-bytes", required_argument, NULL, 0},
	{"max-frame-bytes", required_argument, NULL, 0},
	{"admin-group", required_argument, NULL, 0},
	{"log-level", required_argument, NULL, 0},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

struct override {
	char key[32];
	char where[40];
	const char *value;
};

/* Raises the open-file limit to its maximum: every client is a descriptor. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static struct override overrides[sizeof(long_options) / sizeof(long_options[0])];
	const char *config_path = NULL, *name;
	struct ktxd_config cfg;
	struct server srv;
	struct ktx_err err;
	size_t n_over = 0, i;
	uv_loop_t *loop;
	int ch, idx, rc;

	while ((ch = getopt_long(argc, argv, "c:m:s:d:t:hV", long_options, &idx)) != -1) {
		switch (ch) {
		case 'h':
			fputs(usage_text, stdout);
			return KTXD_EXIT_OK;
		case 'V':
			puts("ktxd " PACKAGE_VERSION);
			return KTXD_EXIT_OK;
		case 'c':
			config_path = optarg;
			continue;
		case 'm': name = "model"; break;
		case 's': name = "socket"; break;
		case 'd': name = "database"; break;
		case 't': name = "threads"; break;
		case 0: name = long_options[idx].name; break;
		default:
			fputs(usage_text, stderr);
			return KTXD_EXIT_USAGE;
		}
		/* The last of a repeated option wins, like the file's last line. */
		for (i = 0; i < n_over; i++)
			if (strcmp(overrides[i].where + 2, name) == 0)
				break;
		snprintf(overrides[i].where, sizeof(overrides[i].where), "--%s", name);
		snprintf(overrides[i].key, sizeof(overrides[i].key), "%s", name);
		for (char *p = overrides[i].key; *p; p++)
			if (*p == '-')
				*p = '_';
		overrides[i].value = optarg;
		if (i == n_over)
			n_over++;
	}
	if (optind < argc) {
		fprintf(stderr, "ktxd: unexpected argument '%s'\n%s", argv[optind], usage_text);
		return KTXD_EXIT_USAGE;
	}
	if (config_init(&cfg, &err) != 0) {
		fprintf(stderr, "ktxd: %s\n", err.msg);
		return KTXD_EXIT_FAIL;
	}
	if (config_path == NULL && access(KTXD_DEFAULT_CONFIG, F_OK) == 0)
		config_path = KTXD_DEFAULT_CONFIG;
	rc = config_path != NULL ? config_load(&cfg, config_path, &err) : 0;
	for (i = 0; rc == 0 && i < n_over; i++)
		rc = config_set(&cfg, overrides[i].where, overrides[i].key, overrides[i].value,
		    &err);
	if (rc == 0)
		rc = config_check(&cfg, &err);
	if (rc != 0) {
		fprintf(stderr, "ktxd: %s\n", err.msg);
		config_free(&cfg);
		return KTXD_EXIT_USAGE;
	}
	log_init(cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	loop = uv_default_loop();
	log_info("ktxd %s starting: model %s, database %s", PACKAGE_VERSION, cfg.model,
	    cfg.database);
	if (server_start(&srv, loop, &cfg, &err) != 0) {
		log_error("%s", err.msg);
		server_stop(&srv, KTXD_EXIT_FAIL);
		uv_run(loop, UV_RUN_DEFAULT);
		server_free(&srv);
		config_free(&cfg);
		return KTXD_EXIT_FAIL;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	rc = srv.exit_code;
	server_free(&srv);
	log_info("stopped");
	uv_loop_close(loop);
	config_free(&cfg);
	return rc;
}
