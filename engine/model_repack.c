/*
 * model_repack.c - the fast path's weights repacked in place at load into
 * the interleaved groups of kernels/cpu/repack.h, where their kernels
 * compute sixteen rows per register instead of one.
 *
 * Only matrices the fast path reads whole rows of through
 * fwd_fast_matmul_act, in row ranges that are multiples of
 * KTX_CPU_RP_ROWS, are candidates: the FFNs and experts, the attention
 * projections computed for every head at once, attn_v_b (one matrix of
 * v_head rows per head, read whole by both attention paths), and the
 * output head. k_b and kv_b are also read transposed, by dequantizing
 * their rows, and the embeddings by row, so they keep the file's layout.
 */
#include "engine/model.h"

#include <stdlib.h>
#include <string.h>

#include "engine/forward_fast.h"
#include "kernels/cpu/repack.h"

/* True when w can be repacked: present, a fast kernel and a repacked one
 * for its type and row length, and its rows in whole groups. */
static bool
repackable(const struct ktx_wt *w)
{
	return w->name != NULL && fwd_fast_has(w) && ktx_cpu_rp_has(w->type, w->ne[0]) &&
	    w->ne[1] % KTX_CPU_RP_ROWS == 0;
}

/* Candidate matrices per layer (the array in candidates()). */
#define LAYER_CANDIDATES 15

/* Collects the candidates of m into list (room for LAYER_CANDIDATES per
 * layer and the head); returns how many. */
static size_t
candidates(struct ktx_model *m, struct ktx_wt **list)
{
	size_t k = 0;

	for (uint32_t il = 0; il < m->hp.n_layer; il++) {
		struct ktx_layer *L = &m->layers[il];
		struct ktx_wt *w[LAYER_CANDIDATES] = { &L->q, &L->q_a, &L->q_b, &L->kv_a,
			&L->v_b, &L->attn_out, &L->ffn_gate, &L->ffn_up, &L->ffn_down, &L->gate_exps,
			&L->up_exps, &L->down_exps, &L->gate_shexp, &L->up_shexp, &L->down_shexp };

		for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
			if (repackable(w[i]))
				list[k++] = w[i];
	}
	if (repackable(&m->output))
		list[k++] = &m->output;
	return k;
}

int
ktx_model_repack(struct ktx_model *m, struct ktx_err *err)
{
	struct ktx_wt **list = malloc(((size_t)m->hp.n_layer * LAYER_CANDIDATES + 1) * sizeof(*list));
	size_t n, nmat = 0, *first;
	int failed = 0;

	if (list == NULL)
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the repack list");
	n = candidates(m, list);
	/* Tasks are single matrices (each expert of a stack its own), so the
	 * threads share the big expert stacks: matrix k of list[i] for
	 * first[i] <= k < first[i + 1]. */
	if ((first = malloc((n + 1) * sizeof(*first))) == NULL) {
		free(list);
		return ktx_err_set(err, KTX_ENOMEM, "out of memory for the repack list");
	}
	for (size_t i = 0; i < n; i++) {
		first[i] = nmat;
		nmat += (size_t)list[i]->ne[2];
	}
	first[n] = nmat;
	/* The image is this process's own anonymous copy (KTX_LOAD_READ), so
	 * writing it is fine. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(m->n_threads) reduction(| : failed)
	for (size_t k = 0; k < nmat; k++) {
		size_t i = 0;
		const struct ktx_wt *w;

		while (first[i + 1] <= k)
			i++;
		w = list[i];
		failed |= ktx_cpu_rp_pack(w->type, w->ne[0], w->ne[1], (uint8_t *)(uintptr_t)w->data +
		    (k - first[i]) * (size_t)w->ne[1] * w->row_bytes) != 0;
	}
	for (size_t i = 0; i < n && !failed; i++) {
		list[i]->repacked = true;
		m->n_bytes_repacked += (uint64_t)list[i]->row_bytes * (uint64_t)list[i]->ne[1] *
		    (uint64_t)list[i]->ne[2];
	}
	free(first);
	free(list);
	/* A failed pack (its scratch group's allocation) leaves a matrix half
	 * repacked: the model cannot be used. */
	return failed ? ktx_err_set(err, KTX_ENOMEM, "out of memory while repacking the weights") :
	    0;
}
