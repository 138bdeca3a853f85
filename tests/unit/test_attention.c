/*
 * test_attention.c - MLA on random weights: the absorbed and the naive
 * path, the reference and the fast compute path, and the legacy
 * (attn_kv_b) and split (attn_k_b + attn_v_b) layouts, all against a plain
 * double-precision computation written out here from DeepSeek's formulas;
 * a prefill followed by decode steps, and two sessions batched together.
 * The fast path's flash kernel (engine/attn_flash.c) at every SIMD level:
 * directly against a double softmax at V3's widths and odd ones, and in
 * long sequences (several key tiles, odd query blocks, causal masking)
 * against the reference softmax. The cache in F16 and BF16, and a cache
 * that grows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attn_flash.h"
#include "engine/model.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/ops.h"
#include "tests/tap.h"

/* Latent and rope widths that leave tails at every vector width: 38 + 8
 * = 46 = 2 * 16 + 14 = 5 * 8 + 6. */
enum { E = 24, H = 3, NOPE = 8, ROPE = 8, V = 6, KVL = 38, QL = 12, NTOK = 7 };
/* A long sequence: four key tiles, the last one partial, odd lengths. */
enum { NLONG = 3 * ATTN_KEY_TILE + 7 };

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

static const char *
cache_name(enum ktx_cache_type t)
{
	return t == KTX_CACHE_F16 ? "F16" : t == KTX_CACHE_BF16 ? "BF16" : "F32";
}

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
	struct ktx_wt w = {.name = "test", .type = KTX_TYPE_F32, .ne = {ne0, ne1, ne2},
	    .row_bytes = (size_t)ne0 * sizeof(float), .data = data};

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
	hp->n_ctx_train = 256;
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
	m->n_ctx = 256;
	m->n_threads = 1;
	m->attn = path;
	m->compute = KTX_PATH_FAST;
	m->cache_type = KTX_CACHE_F32;
	m->scratch = ktx_arena_new();
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
    enum ktx_attn_path path, enum ktx_path compute)
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
	m.compute = compute;
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
	ktx_arena_free(m.scratch);
	return worst;
}

/* Two sessions, one batched decode step each, against running them apart. */
static void
test_batched(struct weights *w, const float (*h)[E], enum ktx_cache_type ct)
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
	m.cache_type = ct;
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
	tap_ok(fwd_attention(&m, 0, it, 2, scratch[0], together[0], &err) == 0,
	    "%s cache: batched step of two sessions runs", cache_name(ct));
	fwd_attention(&m, 0, it, 1, h[3], apart[0], &err);
	fwd_attention(&m, 0, it + 1, 1, h[4], apart[1], &err);
	tap_ok(memcmp(together, apart, sizeof(together)) == 0,
	    "%s cache: a batched decode step equals the sessions stepped apart, bit for bit",
	    cache_name(ct));
	m.attn = KTX_ATTN_NAIVE;
	fwd_attention(&m, 0, it, 2, scratch[0], together[0], &err);
	fwd_attention(&m, 0, it, 1, h[3], apart[0], &err);
	fwd_attention(&m, 0, it + 1, 1, h[4], apart[1], &err);
	tap_ok(memcmp(together, apart, sizeof(together)) == 0, "%s cache: the same on the naive path",
	    cache_name(ct));
	ktx_session_free(a);
	ktx_session_free(b);
	ktx_arena_free(m.scratch);
}

/*
 * attn_flash directly: rows over a random cache of nkeys rows of width
 * elements (kv_lora kl), against softmax and weighted sum in double over
 * the same elements; all rows in one call against each row alone.
 */
static void
test_kernel(enum ktx_cache_type t, size_t width, size_t kl, size_t nkeys)
{
	enum { NR = 13 };
	size_t es = attn_cache_elsize(t), stride = (width + 3) * es, r, j, c;
	uint32_t nk[NR];
	uint8_t *kv = malloc(nkeys * stride);
	float *q = malloc(NR * width * sizeof(float)), *o = malloc(NR * kl * sizeof(float));
	float *o1 = malloc(NR * kl * sizeof(float)), *row = malloc(width * sizeof(float));
	float *keys = malloc(nkeys * width * sizeof(float));
	float *scr = malloc(attn_flash_scratch(NR) * sizeof(float));
	const float *qp[NR];
	float *op[NR], scale = 1 / sqrtf((float)width);
	double worst = 0, *sc = malloc(nkeys * sizeof(double));
	struct attn_rows rows = {NR, qp, op, nk};
	int alone_same = 1;

	/* Visible keys: 1, tile edges and their neighbours, everything. */
	const size_t want[NR] = {1, 2, ATTN_KEY_TILE - 1, ATTN_KEY_TILE, ATTN_KEY_TILE + 1,
		ATTN_KEY_TILE + 1, 2 * ATTN_KEY_TILE - 3, 2 * ATTN_KEY_TILE, 2 * ATTN_KEY_TILE + 5,
		nkeys - 2, nkeys - 1, nkeys, nkeys};

	for (r = 0; r < NR; r++) {
		nk[r] = (uint32_t)(want[r] < nkeys ? want[r] : nkeys);
		if (r > 0 && nk[r] < nk[r - 1])
			nk[r] = nk[r - 1];
		qp[r] = q + r * width;
		op[r] = o + r * kl;
	}
	fill(q, NR * width, 1.0f);
	for (j = 0; j < nkeys; j++) {
		fill(row, width, 2.0f);
		attn_cache_store(t, kv + j * stride, row, width);
		attn_cache_load(t, keys + j * width, kv + j * stride, width);
	}
	attn_flash(t, kv, stride, width, kl, scale, &rows, scr);
	for (r = 0; r < NR; r++) {
		double mx = -INFINITY, sum = 0;

		for (j = 0; j < nk[r]; j++) {
			sc[j] = 0;
			for (c = 0; c < width; c++)
				sc[j] += (double)q[r * width + c] * keys[j * width + c];
			sc[j] *= scale;
			if (sc[j] > mx)
				mx = sc[j];
		}
		for (j = 0; j < nk[r]; j++)
			sum += sc[j] = exp(sc[j] - mx);
		for (c = 0; c < kl; c++) {
			double acc = 0;

			for (j = 0; j < nk[r]; j++)
				acc += sc[j] / sum * keys[j * width + c];
			if (fabs(acc - o[r * kl + c]) > worst)
				worst = fabs(acc - o[r * kl + c]);
		}
		/* The same row alone. */
		{
			struct attn_rows one = {1, qp + r, op, nk + r};
			float *keep = op[0];

			op[0] = o1 + r * kl;
			attn_flash(t, kv, stride, width, kl, scale, &one, scr);
			op[0] = keep;
			if (memcmp(o1 + r * kl, o + r * kl, kl * sizeof(float)) != 0)
				alone_same = 0;
		}
	}
	if (!tap_ok(worst < 1e-5, "%s: flash kernel, %s cache, width %zu, kv_lora %zu, %zu keys: "
	    "matches a double softmax", ktx_cpu_level_name(ktx_cpu_level()), cache_name(t), width,
	    kl, nkeys))
		tap_diag("max |difference| %g", worst);
	tap_ok(alone_same, "%s: flash kernel, %s cache, width %zu: each row alone gives the same "
	    "bits", ktx_cpu_level_name(ktx_cpu_level()), cache_name(t), width);
	free(kv);
	free(q);
	free(o);
	free(o1);
	free(row);
	free(keys);
	free(scr);
	free(sc);
}

/*
 * NLONG tokens through one session: a prefill of 77 (query blocks of 8,
 * the last of 5), one of 19 ending on a tile edge, then decode steps
 * across it. out[NLONG][E]; the cache rows of layer 0 into rows (as
 * stored) when not NULL. 0 on success.
 */
static int
run_long(struct weights *w, const float (*h)[E], enum ktx_path compute,
    enum ktx_cache_type ct, int nthreads, float (*out)[E], uint8_t *rows)
{
	struct ktx_model m;
	struct ktx_layer L;
	struct ktx_session *s;
	struct ktx_fwd_item items[NLONG];
	struct ktx_err err;
	double freq[ROPE / 2];
	int t, rc = -1;

	ktx_ref_rope_freqs(freq, ROPE, 10000, 4, 16, 32, 1);
	make_model(&m, &L, w, true, true, KTX_ATTN_ABSORBED, freq);
	m.compute = compute;
	m.cache_type = ct;
	m.n_threads = nthreads;
	if (ktx_session_new(&m, 0, &s, &err) != 0)
		return -1;
	if (ktx_session_reserve(s, NLONG, &err) != 0)
		goto out;
	for (t = 0; t < NLONG; t++)
		items[t] = (struct ktx_fwd_item){s, 0, (uint32_t)t, NULL};
	if (fwd_attention(&m, 0, items, 77, h[0], out[0], &err) != 0 ||
	    fwd_attention(&m, 0, items + 77, 19, h[77], out[77], &err) != 0)
		goto out;
	for (t = 96; t < NLONG; t++)
		if (fwd_attention(&m, 0, items + t, 1, h[t], out[t], &err) != 0)
			goto out;
	if (rows != NULL)
		memcpy(rows, ktx_kv_row(s, 0, 0), NLONG * ktx_kv_stride(s));
	rc = 0;
out:
	if (rc != 0)
		tap_diag("%s", err.msg);
	ktx_session_free(s);
	ktx_arena_free(m.scratch);
	return rc;
}

static double
max_diff(const float (*a)[E], const float (*b)[E], int n, double *scale)
{
	double d = 0, mx = 0;
	int t, i;

	for (t = 0; t < n; t++)
		for (i = 0; i < E; i++) {
			if (fabs(a[t][i] - b[t][i]) > d)
				d = fabs(a[t][i] - b[t][i]);
			if (fabs(b[t][i]) > mx)
				mx = fabs(b[t][i]);
		}
	if (scale != NULL)
		*scale = mx;
	return d;
}

/* Long sequences: the fast path at the current level against the
 * reference softmax, across thread counts, and with 16-bit caches. */
static void
test_long(struct weights *w, const float (*h)[E], bool cache_types)
{
	static float ref[NLONG][E], fast[NLONG][E], other[NLONG][E];
	static uint8_t rows32[NLONG * (KVL + ROPE) * 4], rows16[NLONG * (KVL + ROPE) * 2];
	const char *lvl = ktx_cpu_level_name(ktx_cpu_level());
	double d, mx;
	size_t i, n = (size_t)NLONG * (KVL + ROPE);
	int ok, nt;

	if (!tap_ok(run_long(w, h, KTX_PATH_REF, KTX_CACHE_F32, 1, ref, NULL) == 0 &&
	    run_long(w, h, KTX_PATH_FAST, KTX_CACHE_F32, 1, fast, rows32) == 0,
	    "%s: %d tokens in two prefills and decode steps run", lvl, NLONG))
		return;
	d = max_diff((const float(*)[E])fast, (const float(*)[E])ref, NLONG, &mx);
	if (!tap_ok(d < 2e-5 * (mx > 1 ? mx : 1), "%s: flash attention over %d positions matches "
	    "the reference softmax", lvl, NLONG))
		tap_diag("max |difference| %g (largest output %g)", d, mx);
	for (nt = 2; nt <= 3; nt++) {
		ok = run_long(w, h, KTX_PATH_FAST, KTX_CACHE_F32, nt, other, NULL) == 0;
		tap_ok(ok && memcmp(fast, other, sizeof(fast)) == 0,
		    "%s: the same bits with %d threads", lvl, nt);
	}
	if (!cache_types)
		return;
	for (i = 0; i < 2; i++) {
		enum ktx_cache_type ct = i == 0 ? KTX_CACHE_F16 : KTX_CACHE_BF16;
		const float *r32 = (const float *)(const void *)rows32;
		const uint16_t *r16 = (const uint16_t *)(const void *)rows16;
		size_t k, bad = 0;

		if (!tap_ok(run_long(w, h, KTX_PATH_FAST, ct, 2, other, rows16) == 0,
		    "%s cache: %d tokens run", cache_name(ct), NLONG))
			continue;
		for (k = 0; k < n; k++)
			if (r16[k] != (ct == KTX_CACHE_F16 ? ktx_fp32_to_fp16(r32[k]) :
			    ktx_fp32_to_bf16(r32[k])))
				bad++;
		tap_ok(bad == 0, "%s cache: every element is the float32 cache's, rounded to "
		    "nearest even", cache_name(ct));
		/* 2^-11 and 2^-8 relative per element. */
		d = max_diff((const float(*)[E])other, (const float(*)[E])fast, NLONG, &mx);
		if (!tap_ok(d < (ct == KTX_CACHE_F16 ? 2e-3 : 1.5e-2) * mx,
		    "%s cache: outputs within its rounding of the float32 cache's",
		    cache_name(ct)))
			tap_diag("max |difference| %g (largest output %g)", d, mx);
		if (!tap_ok(d > 0, "%s cache: and not the same numbers", cache_name(ct)))
			tap_diag("the cache type was not applied");
	}
}

/*
 * A two-layer cache that grows (64 positions, then 128) keeps both
 * layers' rows, and attention after the growth equals attention in a
 * cache that had room from the start.
 */
static void
test_grow(struct weights *w, const float (*h)[E], enum ktx_cache_type ct)
{
	struct ktx_model m;
	struct ktx_layer L[2];
	struct ktx_session *s[2];
	struct ktx_fwd_item items[NLONG];
	struct ktx_err err;
	double freq[ROPE / 2];
	static float out[2][2][NLONG][E];
	static uint8_t before[2][64 * (KVL + ROPE) * 4];
	size_t row;
	int k, il, t, kept = 1, rc = 0;

	ktx_ref_rope_freqs(freq, ROPE, 10000, 4, 16, 32, 1);
	make_model(&m, &L[0], w, true, true, KTX_ATTN_ABSORBED, freq);
	L[1] = L[0];
	m.layers = L;
	m.hp.n_layer = 2;
	m.cache_type = ct;
	for (k = 0; k < 2; k++) {
		rc |= ktx_session_new(&m, 0, &s[k], &err);
		rc |= ktx_session_reserve(s[k], k == 0 ? 40 : NLONG, &err);
	}
	if (!tap_ok(rc == 0 && s[0]->cap == 64, "%s cache: two sessions of two layers",
	    cache_name(ct)))
		return;
	row = ktx_kv_stride(s[0]);
	for (k = 0; k < 2; k++)
		for (t = 0; t < NLONG; t++)
			items[t] = (struct ktx_fwd_item){s[k], 0, (uint32_t)t, NULL};
	/* 40 tokens into both, then grow the first. */
	for (k = 0; k < 2; k++) {
		for (t = 0; t < 40; t++)
			items[t].s = s[k];
		for (il = 0; il < 2; il++)
			rc |= fwd_attention(&m, (uint32_t)il, items, 40, h[0], out[k][il][0], &err);
		s[k]->n_past = 40;
	}
	for (il = 0; il < 2; il++)
		memcpy(before[il], ktx_kv_row(s[0], (uint32_t)il, 0), 40 * row);
	rc |= ktx_session_reserve(s[0], NLONG, &err);
	for (il = 0; il < 2; il++)
		kept &= memcmp(before[il], ktx_kv_row(s[0], (uint32_t)il, 0), 40 * row) == 0;
	tap_ok(rc == 0 && s[0]->cap == 128 && kept, "%s cache: growing to 128 positions keeps "
	    "both layers' rows", cache_name(ct));
	for (k = 0; k < 2; k++) {
		for (t = 40; t < NLONG; t++)
			items[t].s = s[k];
		for (il = 0; il < 2; il++)
			rc |= fwd_attention(&m, (uint32_t)il, items + 40, NLONG - 40, h[40],
			    out[k][il][40], &err);
	}
	tap_ok(rc == 0 && memcmp(out[0], out[1], sizeof(out[0])) == 0,
	    "%s cache: attention after growing equals attention with room from the start",
	    cache_name(ct));
	ktx_session_free(s[0]);
	ktx_session_free(s[1]);
	ktx_arena_free(m.scratch);
}

int
main(void)
{
	static struct weights w;
	static float hl[NLONG][E];
	float h[NTOK][E];
	int hh, i, k, round, lvl;

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
		for (i = 0; i < 16; i++) {
			bool lowq = i & 1, split = i & 2;
			enum ktx_attn_path path = i & 4 ? KTX_ATTN_NAIVE : KTX_ATTN_ABSORBED;
			enum ktx_path compute = i & 8 ? KTX_PATH_REF : KTX_PATH_FAST;
			double d = run_case(&w, (const float(*)[E])h, lowq, split, path, compute);

			if (!tap_ok(d < 2e-5,
			    "round %d: %s path, %s query, %s layout, %s arithmetic match the "
			    "formulas", round, path == KTX_ATTN_NAIVE ? "naive" : "absorbed",
			    lowq ? "low-rank" : "plain",
			    split ? "k_b/v_b" : "kv_b", compute == KTX_PATH_REF ? "reference" :
			    "fast"))
				tap_diag("max |difference| %g", d);
		}
	}
	for (i = 0; i < 3; i++)
		test_batched(&w, (const float(*)[E])h, (enum ktx_cache_type)i);
	fill(&hl[0][0], sizeof(hl) / sizeof(float), 1.5f);
	for (lvl = KTX_CPU_GENERIC; lvl <= ktx_cpu_max_level(); lvl++) {
		static const size_t dims[][3] = {{576, 512, 2 * ATTN_KEY_TILE + 9},
			{KVL + ROPE, KVL, NLONG}, {7, 5, 3}};
		size_t d;

		if (!tap_ok(ktx_cpu_set_level(lvl) == 0, "level %s", ktx_cpu_level_name(lvl)))
			continue;
		for (d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
			for (i = 0; i < 3; i++)
				test_kernel((enum ktx_cache_type)i, dims[d][0], dims[d][1], dims[d][2]);
		test_long(&w, (const float(*)[E])hl, lvl == ktx_cpu_max_level());
	}
	for (i = 0; i < 3; i++)
		test_grow(&w, (const float(*)[E])hl, (enum ktx_cache_type)i);
	return tap_done();
}
