/*
 * test_attention.c - MLA on random weights: the absorbed and the naive
 * path, and the legacy (attn_kv_b) and split (attn_k_b + attn_v_b)
 * layouts, all against a plain double-precision computation written out
 * here from DeepSeek's formulas; a prefill followed by decode steps, and
 * two sessions batched together.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "kernels/ref/ops.h"
#include "tests/tap.h"

enum { E = 24, H = 3, NOPE = 8, ROPE = 4, V = 6, KVL = 10, QL = 12, NTOK = 7 };

/* Weights in "math" layout, row-major [out][in]. */
struct weights {
	float wq[H * (NOPE + ROPE)][E];
	float wqa[QL][E], qa_norm[QL], wqb[H * (NOPE + ROPE)][QL];
	float wkva[KVL + ROPE][E], kv_norm[KVL];
	float wkvb[H * (NOPE + V)][KVL];
	float kb[H][KVL][NOPE];           /* attn_k_b: W_UK[h] transposed */
	float vb[H][V][KVL];              /* attn_v_b: W_UV[h] */
	float wo[E][H * V];
};

static uint64_t rng = 0x1234567;

static float
frand(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}

static void
fill(float *p, size_t n, float scale)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = frand() * scale;
}

static struct ktx_wt
wt(const void *data, int64_t ne0, int64_t ne1, int64_t ne2)
{
	struct ktx_wt w = {"test", KTX_TYPE_F32, {ne0, ne1, ne2}, (size_t)ne0 * sizeof(float),
	    data};

	return w;
}

/* A one-layer model around w: only what fwd_attention reads. */
static void
make_model(struct ktx_model *m, struct ktx_layer *L, struct weights *w, bool low_rank_q,
    bool split_layout, enum ktx_attn_path path, double *freq)
{
	struct ktx_hparams *hp = &m->hp;

	memset(m, 0, sizeof(*m));
	memset(L, 0, sizeof(*L));
	hp->n_vocab = 1;
	hp->n_ctx_train = 64;
	hp->n_embd = E;
	hp->n_layer = 1;
	hp->n_head = H;
	hp->q_lora = low_rank_q ? QL : 0;
	hp->kv_lora = KVL;
	hp->qk_nope = NOPE;
	hp->qk_rope = ROPE;
	hp->v_head = V;
	hp->rms_eps = 1e-6f;
	hp->mla_layout = split_layout;
	m->layers = L;
	m->rope_freq = freq;
	m->kq_scale = 0.3f;
	m->n_ctx = 64;
	m->n_threads = 1;
	m->attn = path;
	if (low_rank_q) {
		L->q_a = wt(w->wqa, E, QL, 1);
		L->q_a_norm = w->qa_norm;
		L->q_b = wt(w->wqb, QL, H * (NOPE + ROPE), 1);
	} else {
		L->q = wt(w->wq, E, H * (NOPE + ROPE), 1);
	}
	L->kv_a = wt(w->wkva, E, KVL + ROPE, 1);
	L->kv_a_norm = w->kv_norm;
	if (split_layout) {
		L->k_b = wt(w->kb, NOPE, KVL, H);
		L->v_b = wt(w->vb, KVL, V, H);
	} else {
		L->kv_b = wt(w->wkvb, KVL, H * (NOPE + V), 1);
	}
	L->attn_out = wt(w->wo, H * V, E, 1);
}

static void
rmsnorm_d(double *x, const float *w, int n)
{
	double ss = 0;
	int i;

	for (i = 0; i < n; i++)
		ss += x[i] * x[i];
	ss = 1 / sqrt(ss / n + 1e-6);
	for (i = 0; i < n; i++)
		x[i] *= ss * w[i];
}

static void
rope_d(double *x, const double *freq, int pos)
{
	int i;

	for (i = 0; i < ROPE / 2; i++) {
		double a = pos * freq[i], x0 = x[2 * i], x1 = x[2 * i + 1];

		x[2 * i] = x0 * cos(a) - x1 * sin(a);
		x[2 * i + 1] = x0 * sin(a) + x1 * cos(a);
	}
}

/* The attention output of token t of a causal sequence h[0..t],
 * straight from the formulas: q, k = [W_UK c ; k_pe], v = W_UV c. */
static void
reference(const struct weights *w, bool low_rank_q, const float (*h)[E], int t,
    const double *freq, double scale, double *out)
{
	static double c[NTOK][KVL], kpe[NTOK][ROPE];
	double q[H][NOPE + ROPE], qa[QL], o[H * V], sc[NTOK];
	int j, i, k, hh;

	for (j = 0; j <= t; j++) {
		double kva[KVL + ROPE];

		for (i = 0; i < KVL + ROPE; i++)
			for (kva[i] = 0, k = 0; k < E; k++)
				kva[i] += (double)w->wkva[i][k] * h[j][k];
		rmsnorm_d(kva, w->kv_norm, KVL);
		memcpy(c[j], kva, sizeof(c[j]));
		memcpy(kpe[j], kva + KVL, sizeof(kpe[j]));
		rope_d(kpe[j], freq, j);
	}
	for (i = 0; i < H * (NOPE + ROPE); i++) {
		double s = 0;

		if (low_rank_q) {
			for (k = 0; k < QL; k++) {
				int m;

				for (qa[k] = 0, m = 0; m < E; m++)
					qa[k] += (double)w->wqa[k][m] * h[t][m];
			}
			rmsnorm_d(qa, w->qa_norm, QL);
			for (k = 0; k < QL; k++)
				s += w->wqb[i][k] * qa[k];
		} else {
			for (k = 0; k < E; k++)
				s += (double)w->wq[i][k] * h[t][k];
		}
		q[i / (NOPE + ROPE)][i % (NOPE + ROPE)] = s;
	}
	for (hh = 0; hh < H; hh++) {
		double sum = 0, max = -1e300;

		rope_d(q[hh] + NOPE, freq, t);
		for (j = 0; j <= t; j++) {
			double s = 0;

			for (i = 0; i < NOPE; i++) {
				double kn = 0;

				for (k = 0; k < KVL; k++)
					kn += (double)w->wkvb[hh * (NOPE + V) + i][k] * c[j][k];
				s += q[hh][i] * kn;
			}
			for (i = 0; i < ROPE; i++)
				s += q[hh][NOPE + i] * kpe[j][i];
			sc[j] = s * scale;
			if (sc[j] > max)
				max = sc[j];
		}
		for (j = 0; j <= t; j++)
			sum += sc[j] = exp(sc[j] - max);
		for (i = 0; i < V; i++) {
			double acc = 0;

			for (j = 0; j <= t; j++) {
				double vv = 0;

				for (k = 0; k < KVL; k++)
					vv += (double)w->wkvb[hh * (NOPE + V) + NOPE + i][k] * c[j][k];
				acc += sc[j] / sum * vv;
			}
			o[hh * V + i] = acc;
		}
	}
	for (i = 0; i < E; i++) {
		double s = 0;

		for (k = 0; k < H * V; k++)
			s += (double)w->wo[i][k] * o[k];
		out[i] = s;
	}
}

/* Runs NTOK tokens as a prefill of 4 then decode steps of 1; returns the
 * largest difference from the reference. */
static double
run_case(struct weights *w, const float (*h)[E], bool low_rank_q, bool split,
    enum ktx_attn_path path)
{
	struct ktx_model m;
	struct ktx_layer L;
	struct ktx_session *s;
	struct ktx_fwd_item items[NTOK];
	struct ktx_err err;
	double freq[ROPE / 2], ref[E], worst = 0;
	float out[NTOK][E];
	int t, i;

	ktx_ref_rope_freqs(freq, ROPE, 10000, 4, 16, 32, 1);
	make_model(&m, &L, w, low_rank_q, split, path, freq);
	if (ktx_session_new(&m, 0, &s, &err) != 0 || ktx_session_reserve(s, NTOK, &err) != 0) {
		tap_diag("%s", err.msg);
		return INFINITY;
	}
	for (t = 0; t < NTOK; t++)
		items[t] = (struct ktx_fwd_item){s, 0, (uint32_t)t, NULL};
	if (fwd_attention(&m, 0, items, 4, h[0], out[0], &err) != 0)
		return INFINITY;
	for (t = 4; t < NTOK; t++)
		if (fwd_attention(&m, 0, items + t, 1, h[t], out[t], &err) != 0)
			return INFINITY;
	for (t = 0; t < NTOK; t++) {
		reference(w, low_rank_q, h, t, freq, m.kq_scale, ref);
		for (i = 0; i < E; i++)
			if (fabs(out[t][i] - ref[i]) > worst)
				worst = fabs(out[t][i] - ref[i]);
	}
	ktx_session_free(s);
	return worst;
}

/* Two sessions, one batched decode step each, against running them apart. */
static void
test_batched(struct weights *w, const float (*h)[E])
{
	struct ktx_model m;
	struct ktx_layer L;
	struct ktx_session *a, *b;
	struct ktx_fwd_item it[4];
	struct ktx_err err;
	double freq[ROPE / 2];
	float together[2][E], apart[2][E], scratch[3][E];

	ktx_ref_rope_freqs(freq, ROPE, 10000, 1, 16, 32, 1);
	make_model(&m, &L, w, true, true, KTX_ATTN_ABSORBED, freq);
	ktx_session_new(&m, 0, &a, &err);
	ktx_session_new(&m, 0, &b, &err);
	ktx_session_reserve(a, 8, &err);
	ktx_session_reserve(b, 8, &err);
	/* a holds h0 h1, b holds h2; then a gets h3 and b gets h4 together. */
	it[0] = (struct ktx_fwd_item){a, 0, 0, NULL};
	it[1] = (struct ktx_fwd_item){a, 0, 1, NULL};
	fwd_attention(&m, 0, it, 2, h[0], scratch[0], &err);
	it[0] = (struct ktx_fwd_item){b, 0, 0, NULL};
	fwd_attention(&m, 0, it, 1, h[2], scratch[0], &err);
	memcpy(scratch[0], h[3], sizeof(scratch[0]));
	memcpy(scratch[1], h[4], sizeof(scratch[1]));
	it[0] = (struct ktx_fwd_item){a, 0, 2, NULL};
	it[1] = (struct ktx_fwd_item){b, 0, 1, NULL};
	tap_is_int(fwd_attention(&m, 0, it, 2, scratch[0], together[0], &err), 0,
	    "batched step of two sessions runs");
	fwd_attention(&m, 0, it, 1, h[3], apart[0], &err);
	fwd_attention(&m, 0, it + 1, 1, h[4], apart[1], &err);
	tap_ok(memcmp(together, apart, sizeof(together)) == 0,
	    "a batched decode step equals the sessions stepped apart, bit for bit");
	m.attn = KTX_ATTN_NAIVE;
	fwd_attention(&m, 0, it, 2, scratch[0], together[0], &err);
	fwd_attention(&m, 0, it, 1, h[3], apart[0], &err);
	fwd_attention(&m, 0, it + 1, 1, h[4], apart[1], &err);
	tap_ok(memcmp(together, apart, sizeof(together)) == 0, "the same on the naive path");
	ktx_session_free(a);
	ktx_session_free(b);
}

int
main(void)
{
	static struct weights w;
	float h[NTOK][E];
	int hh, i, k, round;

	for (round = 0; round < 3; round++) {
		fill(&w.wq[0][0], sizeof(w.wq) / sizeof(float), 0.4f);
		fill(&w.wqa[0][0], sizeof(w.wqa) / sizeof(float), 0.4f);
		fill(w.qa_norm, QL, 1.0f);
		fill(&w.wqb[0][0], sizeof(w.wqb) / sizeof(float), 0.5f);
		fill(&w.wkva[0][0], sizeof(w.wkva) / sizeof(float), 0.4f);
		fill(w.kv_norm, KVL, 1.0f);
		fill(&w.wkvb[0][0], sizeof(w.wkvb) / sizeof(float), 0.5f);
		fill(&w.wo[0][0], sizeof(w.wo) / sizeof(float), 0.3f);
		fill(&h[0][0], sizeof(h) / sizeof(float), 1.5f);
		/* The split layout holds the same numbers as attn_kv_b. */
		for (hh = 0; hh < H; hh++)
			for (k = 0; k < KVL; k++) {
				for (i = 0; i < NOPE; i++)
					w.kb[hh][k][i] = w.wkvb[hh * (NOPE + V) + i][k];
				for (i = 0; i < V; i++)
					w.vb[hh][i][k] = w.wkvb[hh * (NOPE + V) + NOPE + i][k];
			}
		for (i = 0; i < 8; i++) {
			bool lowq = i & 1, split = i & 2;
			enum ktx_attn_path path = i & 4 ? KTX_ATTN_NAIVE : KTX_ATTN_ABSORBED;
			double d = run_case(&w, (const float(*)[E])h, lowq, split, path);

			if (!tap_ok(d < 2e-5,
			    "round %d: %s path, %s query, %s layout match the formulas",
			    round, path == KTX_ATTN_NAIVE ? "naive" : "absorbed",
			    lowq ? "low-rank" : "plain",
			    split ? "k_b/v_b" : "kv_b"))
				tap_diag("max |difference| %g", d);
		}
	}
	test_batched(&w, (const float(*)[E])h);
	return tap_done();
}
