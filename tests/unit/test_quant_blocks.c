/*
 * test_quant_blocks.c - hand-packed blocks of every type with values worked
 * out by hand from the format (not from the code under test), dequantized
 * through ktx_dequantize and compared bit for bit. Each case puts known
 * bits at a chosen position, so a wrong field offset, nibble order, scale
 * packing or rounding order shows up as a wrong value at a known element.
 */
#include <stdint.h>
#include <string.h>

#include "engine/quant.h"
#include "kernels/quant_blocks.h"
#include "tests/tap.h"

static float out[QK_K];

/* Dequantizes one block (n elements) of type from blk into out. */
static void
deq(uint32_t type, const void *blk, int64_t n)
{
	struct ktx_err err;

	memset(out, 0xff, sizeof(out)); /* NaN: unwritten elements show */
	if (ktx_dequantize(type, blk, out, n, &err) != KTX_OK)
		tap_diag("dequantize %s: %s", ktx_type_name(type), err.msg);
}

/* Element i of out equals want exactly (bit for bit, -0 != +0). */
static void
is_elem(int i, float want, const char *name)
{
	int eq = memcmp(&out[i], &want, sizeof(float)) == 0;

	if (!tap_ok(eq, "%s: element %d", name, i))
		tap_diag("got %.9g, want %.9g", (double)out[i], (double)want);
}

static void
test_float_types(void)
{
	float f32[2] = {1.5f, -0.0f};
	uint16_t f16[3] = {0x3555, 0x8001, 0x7bff};
	uint16_t bf16[2] = {0x4049, 0xc2f7};

	deq(KTX_TYPE_F32, f32, 2);
	is_elem(0, 1.5f, "f32");
	is_elem(1, -0.0f, "f32");
	deq(KTX_TYPE_F16, f16, 3);
	is_elem(0, 0.333251953125f, "f16");
	is_elem(1, -0x1p-24f, "f16 subnormal");
	is_elem(2, 65504.0f, "f16 max");
	deq(KTX_TYPE_BF16, bf16, 2);
	is_elem(0, 3.140625f, "bf16");
	is_elem(1, -123.5f, "bf16");
}

static void
test_q4_0(void)
{
	struct block_q4_0 b = {.d = 0x3800}; /* 0.5 */

	b.qs[0] = 0x0f;  /* element 0: 15, element 16: 0 */
	b.qs[5] = 0x93;  /* element 5: 3, element 21: 9 */
	deq(KTX_TYPE_Q4_0, &b, 32);
	is_elem(0, 3.5f, "q4_0 low nibble");
	is_elem(16, -4.0f, "q4_0 high nibble is element j + 16");
	is_elem(5, -2.5f, "q4_0");
	is_elem(21, 0.5f, "q4_0");
	is_elem(31, -4.0f, "q4_0 zero quant is -8 d");
}

static void
test_q4_1_q5(void)
{
	struct block_q4_1 a = {.d = 0x3800, .m = 0xbc00}; /* 0.5, -1 */
	struct block_q5_0 b = {.d = 0x4000};              /* 2 */
	struct block_q5_1 c = {.d = 0x3c00, .m = 0x3800}; /* 1, 0.5 */

	a.qs[2] = 0x7f;
	deq(KTX_TYPE_Q4_1, &a, 32);
	is_elem(2, 6.5f, "q4_1 d * q + m");
	is_elem(18, 2.5f, "q4_1 high nibble");
	is_elem(0, -1.0f, "q4_1 zero quant is the min");

	/* fifth bits: element j is bit j of the little-endian word qh */
	b.qs[1] = 0x3f;
	b.qh[0] = 1 << 1;  /* element 1 */
	b.qh[2] = 1 << 1;  /* element 17 */
	b.qh[3] = 1 << 7;  /* element 31 */
	deq(KTX_TYPE_Q5_0, &b, 32);
	is_elem(1, 30.0f, "q5_0 nibble 15 + fifth bit");
	is_elem(17, 6.0f, "q5_0 high nibble 3 + fifth bit");
	is_elem(31, 0.0f, "q5_0 fifth bit alone is the middle");
	is_elem(0, -32.0f, "q5_0 zero quant is -16 d");

	memcpy(c.qs, b.qs, sizeof(c.qs));
	memcpy(c.qh, b.qh, sizeof(c.qh));
	deq(KTX_TYPE_Q5_1, &c, 32);
	is_elem(1, 31.5f, "q5_1 d * q + m");
	is_elem(17, 19.5f, "q5_1");
	is_elem(0, 0.5f, "q5_1 zero quant is the min");
}

static void
test_q8_0(void)
{
	struct block_q8_0 b[2] = {{.d = 0x3400}, {.d = 0xbc00}}; /* 0.25, -1 */

	b[0].qs[3] = -128;
	b[0].qs[31] = 127;
	b[1].qs[0] = 5;
	deq(KTX_TYPE_Q8_0, b, 64);
	is_elem(3, -32.0f, "q8_0");
	is_elem(31, 31.75f, "q8_0");
	is_elem(0, 0.0f, "q8_0");
	is_elem(32, -5.0f, "q8_0 second block has its own scale");
}

static void
test_q2_K(void)
{
	struct block_q2_K b;

	memset(&b, 0, sizeof(b));
	b.d = 0x3c00;      /* 1.0 */
	b.dmin = 0x3800;   /* 0.5 */
	/* sub-block 5 = half 0, shift 2, second 16: elements 80..95 read
	 * bits 4-5 of qs[16..31]; scale 2, min 3 */
	b.scales[5] = 0x32;
	b.qs[16 + 3] = 3 << 4;
	/* sub-block 15 = half 1, shift 3, second 16: elements 240..255 read
	 * bits 6-7 of qs[48..63] */
	b.scales[15] = 0x0f;
	b.qs[48 + 15] = 2 << 6;
	deq(KTX_TYPE_Q2_K, &b, QK_K);
	is_elem(83, 4.5f, "q2_K d*sc*q - dmin*m");
	is_elem(80, -1.5f, "q2_K zero quant gives -dmin*m");
	is_elem(255, 30.0f, "q2_K last element");
	is_elem(0, 0.0f, "q2_K zero scale and min");
}

static void
test_q3_K(void)
{
	struct block_q3_K b;

	memset(&b, 0, sizeof(b));
	b.d = 0x3c00;
	/* sub-block 9 (half 1, shift 0, second 16: elements 144..159):
	 * 6-bit scale 29 (= -3 after the bias), low nibble in the high
	 * nibble of scales[1], top bits 01 at bits 4-5 of scales[9] */
	b.scales[1] = 0xd0;
	b.scales[9] = 0x10;
	b.qs[48 + 2] = 2;          /* element 146: low bits 2 */
	b.hmask[16 + 2] = 1 << 4;  /* and its high bit (bit 4h + s) set */
	/* sub-block 0 keeps scale 0 (= -32): element 0 is -32 * (0 - 4) */
	deq(KTX_TYPE_Q3_K, &b, QK_K);
	is_elem(146, -6.0f, "q3_K high bit set: q = 2");
	is_elem(147, 12.0f, "q3_K high bit clear: q = 0 - 4");
	is_elem(0, 128.0f, "q3_K scale 0 means -32");
}

static void
test_q4_K_q5_K(void)
{
	struct block_q4_K b4;
	struct block_q5_K b5;

	memset(&b4, 0, sizeof(b4));
	b4.d = 0x3c00;
	b4.dmin = 0x3400; /* 0.25 */
	/* sub-block 0: scale 2, min 1 in the low 6 bits of bytes 0 and 4 */
	b4.scales[0] = 2;
	b4.scales[4] = 1;
	b4.qs[0] = 5;
	/* sub-block 5: scale 19 = 0x13 (nibble 3 in byte 9, top 01 in byte
	 * 1), min 34 = 0x22 (nibble 2 in byte 9, top 10 in byte 5) */
	b4.scales[9] = 0x23;
	b4.scales[1] = 0x40;
	b4.scales[5] = 0x80;
	b4.qs[64 + 7] = 0xa0; /* sub-block 5 = high nibbles of qs[64..95] */
	deq(KTX_TYPE_Q4_K, &b4, QK_K);
	is_elem(0, 9.75f, "q4_K sub-block 0");
	is_elem(167, 181.5f, "q4_K sub-block 5 packed 6-bit scale and min");
	is_elem(160, -8.5f, "q4_K zero quant");
	is_elem(40, 0.0f, "q4_K top bits do not leak into sub-block 1");

	memset(&b5, 0, sizeof(b5));
	b5.d = b4.d;
	b5.dmin = b4.dmin;
	memcpy(b5.scales, b4.scales, sizeof(b5.scales));
	memcpy(b5.qs, b4.qs, sizeof(b5.qs));
	b5.qh[7] = 1 << 5;  /* fifth bit of sub-block 5 (= 2c + 1, c = 2) */
	b5.qh[0] = 1 << 0;  /* fifth bit of sub-block 0 */
	deq(KTX_TYPE_Q5_K, &b5, QK_K);
	is_elem(0, 41.75f, "q5_K sub-block 0 with its fifth bit");
	is_elem(167, 485.5f, "q5_K sub-block 5 with its fifth bit");
	is_elem(160, -8.5f, "q5_K");
}

static void
test_q6_K(void)
{
	struct block_q6_K b;

	memset(&b, 0, sizeof(b));
	b.d = 0x3800; /* 0.5 */
	/* element 244 = 128 + 32*3 + 20: high nibble of ql[64 + 32 + 20],
	 * bits 6-7 of qh[32 + 20], scale 8 + 6 + 1 */
	b.scales[15] = -3;
	b.ql[116] = 0x50;
	b.qh[52] = 3 << 6;
	b.scales[14] = 1;
	b.scales[0] = 2;
	b.ql[1] = 0x0f;     /* element 1: low nibble 15 */
	b.qh[1] = 2;        /* and top bits 10 */
	deq(KTX_TYPE_Q6_K, &b, QK_K);
	is_elem(244, -31.5f, "q6_K d * sc * (q - 32)");
	is_elem(228, -16.0f, "q6_K zero quant is -32");
	is_elem(1, 15.0f, "q6_K element 1");
}

static void
test_q8_K(void)
{
	struct block_q8_K b;

	memset(&b, 0, sizeof(b));
	b.d = 0.1f;
	b.qs[200] = -7;
	deq(KTX_TYPE_Q8_K, &b, QK_K);
	is_elem(200, 0.1f * -7, "q8_K float32 scale");
	is_elem(0, 0.0f, "q8_K");
}

static void
test_iq2(void)
{
	struct block_iq2_xxs a;
	struct block_iq2_xs b;

	memset(&a, 0, sizeof(a));
	a.d = 0x3c00;
	a.qs[0] = 0x0001;  /* group 0: grid 1 (43, 8, ..., 8), then grid 0 */
	a.qs[2] = 0x0001;  /* sign code 1 for the first 8: bits 0 and 7 */
	a.qs[3] = 0x3000;  /* scale 3: db = (0.5 + 3) / 4 = 0.875 */
	deq(KTX_TYPE_IQ2_XXS, &a, QK_K);
	is_elem(0, -37.625f, "iq2_xxs grid byte 0, negated");
	is_elem(1, 7.0f, "iq2_xxs grid byte 1");
	is_elem(7, -7.0f, "iq2_xxs parity sign on the eighth value");
	is_elem(8, 7.0f, "iq2_xxs second grid index");
	is_elem(32, 1.0f, "iq2_xxs group with scale 0 is 8 * 0.125");

	memset(&b, 0, sizeof(b));
	b.d = 0x3c00;
	b.scales[0] = 0x21;          /* 0.375 for the first 16, 0.625 next */
	b.qs[0] = 2 | 2 << 9;        /* grid 2 (25, 25, 8, ...), signs 130 */
	deq(KTX_TYPE_IQ2_XS, &b, QK_K);
	is_elem(0, 9.375f, "iq2_xs");
	is_elem(1, -9.375f, "iq2_xs sign bit 1");
	is_elem(7, -3.0f, "iq2_xs sign bit 7");
	is_elem(16, 5.0f, "iq2_xs second scale nibble");
}

static void
test_iq2_s_iq3_s(void)
{
	struct block_iq2_s a;
	struct block_iq3_s b;

	memset(&a, 0, sizeof(a));
	a.d = 0x3c00;
	a.scales[0] = 0x03;    /* 0.875 for values 0-15, 0.125 for 16-31 */
	a.qs[1] = 0x23;        /* values 8-15: grid 0x123 = 25 8 25 8 25 25 8 8 */
	a.qh[0] = 1 << 2;      /* its high index bits 01 */
	a.qs[32 + 1] = 0x81;   /* its sign byte: values 0 and 7 negated */
	deq(KTX_TYPE_IQ2_S, &a, QK_K);
	is_elem(8, -21.875f, "iq2_s 10-bit index, sign byte");
	is_elem(9, 7.0f, "iq2_s");
	is_elem(15, -7.0f, "iq2_s sign bit 7 is explicit");
	is_elem(16, 1.0f, "iq2_s second scale nibble");

	memset(&b, 0, sizeof(b));
	b.d = 0x3800;          /* 0.5 */
	b.scales[0] = 0x20;    /* group 0: 1 + 2*0; group 1: 1 + 2*2 */
	b.qs[8] = 0x05;        /* group 1, values 0-3: grid 0x105 = 11 15 9 5 */
	b.qh[1] = 0x01;        /* its ninth index bit */
	b.signs[4] = 0x12;     /* values 1 and 4 of group 1 negated */
	deq(KTX_TYPE_IQ3_S, &b, QK_K);
	is_elem(32, 27.5f, "iq3_s 9-bit index");
	is_elem(33, -37.5f, "iq3_s sign bit 1");
	is_elem(35, 12.5f, "iq3_s");
	is_elem(36, -2.5f, "iq3_s second grid of the pair, sign bit 4");
	is_elem(0, 0.5f, "iq3_s group 0, scale 1");
}

static void
test_iq3_xxs(void)
{
	struct block_iq3_xxs b;

	memset(&b, 0, sizeof(b));
	b.d = 0x3c00;
	b.qs[0] = 5;                 /* grid 5: 62, 12, 4, 4 */
	b.qs[64 + 3] = 1 << 4;       /* group 0 scale 1: (0.5 + 1) / 2 */
	b.qs[64 + 0] = 3;            /* sign code 3: values 0 and 1 */
	deq(KTX_TYPE_IQ3_XXS, &b, QK_K);
	is_elem(0, -46.5f, "iq3_xxs");
	is_elem(1, -9.0f, "iq3_xxs");
	is_elem(2, 3.0f, "iq3_xxs");
	is_elem(4, 3.0f, "iq3_xxs second grid of the pair");
}

static void
test_iq1(void)
{
	struct block_iq1_s s;
	struct block_iq1_m m;

	memset(&s, 0, sizeof(s));
	s.d = 0x3800;                        /* 0.5 */
	s.qh[0] = 0x8000 | 2 << 12 | 5 << 3; /* delta -, scale 5, group 1 high bits 5 */
	s.qs[1] = 0x23;                      /* group 1: grid 0x523 */
	deq(KTX_TYPE_IQ1_S, &s, QK_K);
	is_elem(0, -2.8125f, "iq1_s grid 0 is all -1");
	is_elem(8, -2.8125f, "iq1_s");
	is_elem(9, -0.3125f, "iq1_s");
	is_elem(14, 2.1875f, "iq1_s");
	is_elem(32, 0.5f * -0.875f, "iq1_s next group, delta +");

	memset(&m, 0, sizeof(m));
	/* super-scale 1.0 = 0x3c00 from the top nibbles of the scale words */
	m.scales[5] = 0xc0;
	m.scales[7] = 0x30;
	m.scales[0] = 0x11;  /* group 0: first 16 scale 1 (x3), next 16 scale 2 (x5) */
	m.qh[0] = 0x08;      /* values 0-7: delta negative */
	m.qh[1] = 0x01;      /* values 16-23: index high bits 1 */
	m.qs[2] = 0x07;      /* so grid 0x107 */
	deq(KTX_TYPE_IQ1_M, &m, QK_K);
	is_elem(0, -3.375f, "iq1_m");
	is_elem(8, -2.625f, "iq1_m");
	is_elem(16, 0.625f, "iq1_m second scale");
	is_elem(17, -4.375f, "iq1_m");
}

static void
test_iq4_nl(void)
{
	struct block_iq4_nl b[2] = {{.d = 0x3800}, {.d = 0xc000}}; /* 0.5, -2 */

	b[0].qs[3] = 0x9f;
	b[1].qs[0] = 0x07;
	deq(KTX_TYPE_IQ4_NL, b, 64);
	is_elem(3, 56.5f, "iq4_nl value 113");
	is_elem(19, 6.5f, "iq4_nl high nibble, value 13");
	is_elem(0, -63.5f, "iq4_nl value -127");
	is_elem(32, 20.0f, "iq4_nl second block, value -10");
}

static void
test_iq4_xs(void)
{
	struct block_iq4_xs b;

	memset(&b, 0, sizeof(b));
	b.d = 0x3c00;
	/* group 3: scale 37 (5 after the bias): nibble 5 high in scales_l[1],
	 * top bits 10 at bits 6-7 of scales_h */
	b.scales_l[1] = 0x50;
	b.scales_h = 2 << 6;
	b.qs[48] = 0xf0;
	deq(KTX_TYPE_IQ4_XS, &b, QK_K);
	is_elem(96, -635.0f, "iq4_xs value -127");
	is_elem(112, 565.0f, "iq4_xs high nibble, value 113");
	is_elem(0, 4064.0f, "iq4_xs scale 0 means -32");
}

int
main(void)
{
	test_float_types();
	test_q4_0();
	test_q4_1_q5();
	test_q8_0();
	test_q2_K();
	test_q3_K();
	test_q4_K_q5_K();
	test_q6_K();
	test_q8_K();
	test_iq2();
	test_iq2_s_iq3_s();
	test_iq3_xxs();
	test_iq1();
	test_iq4_nl();
	test_iq4_xs();
	return tap_done();
}
