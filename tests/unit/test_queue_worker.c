/*
 * test_queue_worker.c - the worker thread with the real engine: loading,
 * events through uv_async, streamed text equal to the stored answer,
 * greedy determinism, the session cache of a follow-up, cancellation, a
 * prompt over the context, and several jobs handed over at once (one batch).
 * Uses the oracle's v3-f32 model.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "daemon/worker.h"
#include "tests/tap.h"

struct seen {
	struct worker *w;
	bool loaded, ended, cancel_on_text;
	char text[8192];
	size_t n_text;
	unsigned n_pieces;
	struct worker_ev end; /* copy of the WEV_END (text kept in answer) */
	char *answer;
	struct gen_info info;
	bool batch;           /* several jobs at once: their ends go to ends[] */
	struct worker_ev ends[4];
	unsigned n_ends;
};

static void
on_events(uv_async_t *a)
{
	struct seen *s = a->data;
	struct worker_ev *ev, *next;

	for (ev = worker_take(s->w); ev != NULL; ev = next) {
		next = ev->next;
		switch (ev->type) {
		case WEV_LOADED:
			s->loaded = true;
			s->info = ev->info;
			break;
		case WEV_FAILED:
			tap_diag("load failed: %s", ev->text);
			s->loaded = s->ended = true;
			break;
		case WEV_TEXT:
			if (s->n_text + ev->len < sizeof(s->text)) {
				memcpy(s->text + s->n_text, ev->text, ev->len);
				s->n_text += ev->len;
			}
			s->n_pieces++;
			if (s->cancel_on_text)
				worker_cancel(s->w, ev->job);
			break;
		case WEV_END:
			if (s->batch) {
				if (s->n_ends < 4) {
					s->ends[s->n_ends] = *ev;
					s->ends[s->n_ends++].next = NULL;
					ev->text = NULL;
				}
				break;
			}
			s->end = *ev;
			s->answer = ev->text;
			ev->text = NULL;
			s->ended = true;
			break;
		case WEV_PROGRESS:
			break;
		}
		worker_ev_free(ev);
	}
}

/* Runs one job to its end; the answer and events land in s. */
static void
run(uv_loop_t *loop, struct seen *s, int64_t id, int64_t conv, const struct gen_turn *turns,
    size_t n, const struct job_options *opt)
{
	struct worker_job j;
	struct ktx_err err;

	free(s->answer);
	s->answer = NULL;
	s->ended = false;
	s->n_text = 0;
	s->n_pieces = 0;
	memset(&s->end, 0, sizeof(s->end));
	memset(&j, 0, sizeof(j));
	j.id = id;
	j.req.conversation = conv;
	j.req.turns = turns;
	j.req.n_turns = n;
	j.req.opt = opt;
	if (worker_start(s->w, &j, &err) != 0) {
		tap_diag("worker_start: %s", err.msg);
		return;
	}
	while (!s->ended)
		uv_run(loop, UV_RUN_ONCE);
	s->text[s->n_text] = '\0';
}

int
main(void)
{
	const char *oracle = getenv("KTX_ORACLE");
	struct job_options greedy = {.max_tokens = 6, .temperature = 0, .top_p = 1};
	struct job_options longer = {.max_tokens = 1000, .temperature = 0.8, .top_p = 0.95};
	struct gen_turn turns[3];
	struct gen_params p;
	struct seen s;
	struct ktx_err err;
	uv_loop_t *loop = uv_default_loop();
	uv_async_t async;
	char model[4096], first[8192];
	char *big;
	uint32_t p1;
	int i, rc;

	snprintf(model, sizeof(model), "%s/models/v3-f32.gguf",
	    oracle ? oracle : "../shared/oracle");
	memset(&s, 0, sizeof(s));
	uv_async_init(loop, &async, on_events);
	async.data = &s;
	memset(&p, 0, sizeof(p));
	p.model = model;
	p.threads = 1;
	rc = worker_new(&p, &async, &s.w, &err);
	tap_is_int(rc, 0, "the worker starts");
	if (rc != 0)
		return tap_done();
	while (!s.loaded)
		uv_run(loop, UV_RUN_ONCE);
	tap_ok(s.info.n_ctx > 0 && s.info.bytes_ram > 0, "the model loads (context %u)",
	    s.info.n_ctx);

	turns[0].assistant = false;
	turns[0].content = "Hello, who are you?";
	run(loop, &s, 1, 1, turns, 1, &greedy);
	tap_ok(s.end.state == JOB_DONE && s.end.stats.gen_tokens == 6,
	    "a job ends done after 6 tokens");
	tap_ok(s.answer != NULL && strcmp(s.answer, s.text) == 0 && s.n_pieces > 0,
	    "the streamed pieces make up the answer");
	tap_is_int(s.end.stats.cached_tokens, 0, "a new conversation has nothing cached");
	p1 = s.end.stats.prompt_tokens;
	snprintf(first, sizeof(first), "%s", s.answer ? s.answer : "");

	run(loop, &s, 2, 2, turns, 1, &greedy);
	tap_is_str(s.answer, first, "greedy decoding repeats itself in another conversation");

	turns[1].assistant = true;
	turns[1].content = first;
	turns[2].assistant = false;
	turns[2].content = "Tell me more.";
	run(loop, &s, 3, 1, turns, 3, &greedy);
	tap_ok(s.end.state == JOB_DONE && s.end.stats.prompt_tokens > p1,
	    "a follow-up's prompt holds the first exchange (%u > %u tokens)",
	    s.end.stats.prompt_tokens, p1);
	tap_ok(s.end.stats.cached_tokens + 2 >= p1,
	    "and reuses the cached session (%u of %u cached)", s.end.stats.cached_tokens,
	    s.end.stats.prompt_tokens);

	s.cancel_on_text = true;
	run(loop, &s, 4, 3, turns, 1, &longer);
	s.cancel_on_text = false;
	tap_ok(s.end.state == JOB_CANCELED && s.end.stats.gen_tokens < 100,
	    "cancel stops a running job (after %u tokens)", s.end.stats.gen_tokens);

	if ((big = malloc(60001)) == NULL)
		return tap_done();
	for (i = 0; i < 60000; i++)
		big[i] = i % 6 == 5 ? ' ' : 'a' + i % 5;
	big[60000] = '\0';
	turns[0].content = big;
	run(loop, &s, 5, 4, turns, 1, &greedy);
	tap_ok(s.end.state == JOB_FAILED && s.end.code == KTX_ERANGE && s.answer &&
		strstr(s.answer, "context") != NULL,
	    "a prompt over the context fails, saying so: %s", s.answer ? s.answer : "");

	/* Three jobs handed over at once run as one batch; the one whose
	 * prompt does not fit fails alone, the others answer as alone. */
	{
		struct gen_turn hello = {false, "Hello, who are you?"}, over = {false, big};
		struct worker_job jobs[3];
		unsigned k;

		memset(jobs, 0, sizeof(jobs));
		for (k = 0; k < 3; k++) {
			jobs[k].id = 7 + k;
			jobs[k].req.conversation = 5 + k;
			jobs[k].req.turns = k == 1 ? &over : &hello;
			jobs[k].req.n_turns = 1;
			jobs[k].req.opt = &greedy;
		}
		s.batch = true;
		for (k = 0, rc = 0; k < 3 && rc == 0; k++)
			rc = worker_start(s.w, &jobs[k], &err);
		tap_is_int(rc, 0, "three jobs are handed over at once");
		while (rc == 0 && s.n_ends < 3)
			uv_run(loop, UV_RUN_ONCE);
		for (k = 0, i = 0; k < s.n_ends; k++) {
			const struct worker_ev *e = &s.ends[k];

			if (e->job == 8)
				i += e->state == JOB_FAILED && e->code == KTX_ERANGE;
			else
				i += e->state == JOB_DONE && e->text != NULL &&
				    strcmp(e->text, first) == 0;
		}
		tap_ok(s.n_ends == 3 && i == 3,
		    "a batch: the prompt over the context fails alone, the others "
		    "give their answers alone");
		for (k = 0; k < s.n_ends; k++)
			free(s.ends[k].text);
		s.batch = false;
	}
	free(big);

	turns[0].content = "Still working?";
	run(loop, &s, 6, 4, turns, 1, &greedy);
	tap_ok(s.end.state == JOB_DONE, "the worker goes on after a failed job");

	free(s.answer);
	worker_free(s.w);
	uv_close((uv_handle_t *)&async, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return tap_done();
}
