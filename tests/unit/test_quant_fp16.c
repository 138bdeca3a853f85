/* test_quant_fp16.c - the f16 and bf16 conversions (kernels/ref/fp16.h):
 * exactness, rounding to nearest even, subnormals, infinities and NaNs, as
 * ggml converts them. */
#include <stdint.h>

#include "kernels/ref/fp16.h"
#include "tests/tap.h"

static void
is_bits32(float got, uint32_t want, const char *name)
{
	uint32_t g = ktx_f32_bits(got);

	if (!tap_ok(g == want, "%s", name))
		tap_diag("got 0x%08x, want 0x%08x", (unsigned)g, (unsigned)want);
}

static void
is_bits16(uint16_t got, uint16_t want, const char *name)
{
	if (!tap_ok(got == want, "%s", name))
		tap_diag("got 0x%04x, want 0x%04x", (unsigned)got, (unsigned)want);
}

/* binary16 bits -> float32 bits */
static const struct {
	uint16_t h;
	uint32_t f;
	const char *name;
} to32[] = {
	{0x0000, 0x00000000, "+0"},
	{0x8000, 0x80000000, "-0 keeps its sign"},
	{0x3c00, 0x3f800000, "1.0"},
	{0xc000, 0xc0000000, "-2.0"},
	{0x7bff, 0x477fe000, "largest finite 65504"},
	{0x0400, 0x38800000, "smallest normal 2^-14"},
	{0x0001, 0x33800000, "smallest subnormal 2^-24"},
	{0x03ff, 0x387fc000, "largest subnormal 1023 * 2^-24"},
	{0x8201, 0xb8004000, "negative subnormal -513 * 2^-24"},
	{0x7c00, 0x7f800000, "+inf"},
	{0xfc00, 0xff800000, "-inf"},
	{0x7e00, 0x7fc00000, "quiet NaN"},
	{0x7c01, 0x7fc02000, "signalling NaN comes out quiet, payload kept"},
	{0xfd55, 0xffeaa000, "negative NaN keeps its payload"},
};

/* float32 -> binary16 bits */
static const struct {
	float f;
	uint16_t h;
	const char *name;
} to16[] = {
	{0.0f, 0x0000, "+0"},
	{-0.0f, 0x8000, "-0"},
	{1.0f, 0x3c00, "1.0"},
	{-0.333333343f, 0xb555, "-1/3 rounds to nearest"},
	{1.0f + 0x1p-11f, 0x3c00, "tie 1 + 2^-11 rounds to even (down)"},
	{1.0f + 3 * 0x1p-11f, 0x3c02, "tie 1 + 3 * 2^-11 rounds to even (up)"},
	{1.0f + 0x1p-11f + 0x1p-23f, 0x3c01, "just above a tie rounds up"},
	{2047.5f, 0x6800, "a mantissa carry bumps the exponent"},
	{65504.0f, 0x7bff, "65504 is the largest finite"},
	{65519.996f, 0x7bff, "just under 65520 stays finite"},
	{65520.0f, 0x7c00, "65520 rounds to infinity"},
	{-1e9f, 0xfc00, "overflow gives -inf"},
	{0x1p-14f, 0x0400, "2^-14 is the smallest normal"},
	{0x1p-14f - 0x1p-25f, 0x0400, "tie below 2^-14 rounds up to the even normal"},
	{0x1p-24f, 0x0001, "2^-24 is the smallest subnormal"},
	{0x1p-25f, 0x0000, "tie 2^-25 rounds to even zero"},
	{0x1p-25f + 0x1p-40f, 0x0001, "just above 2^-25 rounds up"},
	{3 * 0x1p-25f, 0x0002, "tie 1.5 * 2^-24 rounds to even 2"},
	{-5 * 0x1p-25f, 0x8002, "tie -2.5 * 2^-24 rounds to even -2"},
	{1e-30f, 0x0000, "tiny underflows to zero"},
};

/* float32 bits -> binary16 bits, for inputs best given as bits */
static const struct {
	uint32_t f;
	uint16_t h;
	const char *name;
} bits_to16[] = {
	{0x7f800000, 0x7c00, "+inf"},
	{0xff800000, 0xfc00, "-inf"},
	{0x7fc00000, 0x7e00, "NaN"},
	{0xff812345, 0xfe00, "any NaN becomes 0x7e00 with its sign"},
	{0x80000001, 0x8000, "a float32 subnormal gives -0"},
};

static void
test_fp16_cases(void)
{
	for (size_t i = 0; i < sizeof(to32) / sizeof(to32[0]); i++)
		is_bits32(ktx_fp16_to_fp32(to32[i].h), to32[i].f, to32[i].name);
	for (size_t i = 0; i < sizeof(to16) / sizeof(to16[0]); i++)
		is_bits16(ktx_fp32_to_fp16(to16[i].f), to16[i].h, to16[i].name);
	for (size_t i = 0; i < sizeof(bits_to16) / sizeof(bits_to16[0]); i++)
		is_bits16(ktx_fp32_to_fp16(ktx_f32_from_bits(bits_to16[i].f)), bits_to16[i].h,
		    bits_to16[i].name);
}

/* Every non-NaN binary16 survives f16 -> f32 -> f16. */
static void
test_fp16_roundtrip_all(void)
{
	int bad = 0;

	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0)
			continue; /* NaN */
		uint16_t back = ktx_fp32_to_fp16(ktx_fp16_to_fp32((uint16_t)h));

		if (back != h && bad++ < 3)
			tap_diag("0x%04x does not round-trip", (unsigned)h);
	}
	tap_ok(bad == 0, "all 63490 non-NaN f16 values round-trip through f32");
}

/* Rounding to f16 is monotonic and lands on one of the two neighbours. */
static void
test_fp32_to_fp16_neighbours(void)
{
	uint32_t seed = 12345;
	int bad = 0;

	for (int i = 0; i < 200000; i++) {
		seed = seed * 1664525u + 1013904223u;
		/* magnitudes from 2^-26 to 2^16 */
		uint32_t exp = 101 + (seed >> 8) % 42;
		float f = ktx_f32_from_bits((seed & 0x807fffff) | exp << 23);
		uint16_t h = ktx_fp32_to_fp16(f);
		float r = ktx_fp16_to_fp32(h);
		float up = ktx_fp16_to_fp32((uint16_t)(h + 1));
		float down = (h & 0x7fff) ? ktx_fp16_to_fp32((uint16_t)(h - 1)) : -r;

		if (fabsf(r) > 65504.0f)
			continue;
		/* the neighbours are at least as far from f as the choice */
		float dist = fabsf(r - f);

		if ((fabsf(up - f) < dist || fabsf(down - f) < dist) && bad++ < 3)
			tap_diag("%a rounds to 0x%04x", (double)f, (unsigned)h);
	}
	tap_ok(bad == 0, "f32 -> f16 picks the nearest value on 200000 random inputs");
}

/* bfloat16: widening is a shift; narrowing rounds to even, NaNs go quiet */
static const struct {
	uint32_t f;
	uint16_t h;
	const char *name;
} bf16_cases[] = {
	{0x3f800000, 0x3f80, "1.0"},
	{0x3f808000, 0x3f80, "tie rounds to even (down)"},
	{0x3f818000, 0x3f82, "tie rounds to even (up)"},
	{0xbf808008, 0xbf81, "above a tie rounds away from zero"},
	{0x7f7fffff, 0x7f80, "float max rounds to inf"},
	{0x7f800000, 0x7f80, "inf stays inf"},
	{0x7f800001, 0x7fc0, "signalling NaN truncated and made quiet"},
	{0xffa12345, 0xffe1, "negative NaN keeps its top payload"},
	{0x00008000, 0x0000, "subnormal tie rounds to even zero"},
	{0x00018000, 0x0002, "subnormal tie rounds to even 2"},
	{0x80000001, 0x8000, "tiny negative subnormal gives -0"},
};

static void
test_bf16(void)
{
	for (size_t i = 0; i < sizeof(bf16_cases) / sizeof(bf16_cases[0]); i++)
		is_bits16(ktx_fp32_to_bf16(ktx_f32_from_bits(bf16_cases[i].f)), bf16_cases[i].h,
		    bf16_cases[i].name);
	is_bits32(ktx_bf16_to_fp32(0x3f80), 0x3f800000, "bf16 1.0 widens");
	is_bits32(ktx_bf16_to_fp32(0x8001), 0x80010000, "bf16 subnormal widens exactly");
	is_bits32(ktx_bf16_to_fp32(0x7f81), 0x7f810000, "bf16 NaN widens bit for bit");
	is_bits32(ktx_bf16_to_fp32(0xff80), 0xff800000, "bf16 -inf widens");
}

int
main(void)
{
	test_fp16_cases();
	test_fp16_roundtrip_all();
	test_fp32_to_fp16_neighbours();
	test_bf16();
	return tap_done();
}
