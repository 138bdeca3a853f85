/*
 * nofma.h - included first by the reference kernels that do float
 * arithmetic: it stops the compiler from fusing a multiply and an add into
 * one fused multiply-add.
 *
 * The reference code is meant to give the same bits on every build. GCC in
 * GNU mode contracts a * b + c whenever the target has FMA (any aarch64, x86
 * with -march=native), and a fused result rounds differently: in the
 * quantizers' least-squares searches that changes which blocks are chosen.
 * So these files turn contraction off for themselves, whatever flags the
 * build uses. (In today's dequantizers every product that feeds an add is
 * exact - an fp16 scale times small integers - so they would pass the oracle
 * hashes either way; this keeps it so for any that come later.)
 */
#ifndef KTX_KERNELS_REF_NOFMA_H
#define KTX_KERNELS_REF_NOFMA_H

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#endif
