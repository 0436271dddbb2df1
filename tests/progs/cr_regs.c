/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: registers.  See crtest.h for the protocol.
 *
 * Values are loaded into registers by inline assembly, held there while the
 * program waits for the go file in a loop of raw system calls (the kernel
 * keeps every register but rax, rcx and r11 across a system call), and
 * stored back once it is there:
 *   - general purpose: rbx, rbp, rdx, r8, r9, r10, r12..r15;
 *   - SSE: xmm0..xmm15; with AVX: ymm0..ymm15 (upper halves too); with
 *     AVX-512: zmm0..zmm31 and k1..k7;
 *   - x87: three values on the register stack, the x87 control word
 *     (precision and rounding) and MXCSR (rounding, flush-to-zero).
 * Also a floating-point computation (double, long double, float; the
 * program links no libm) started before the dump and finished after it,
 * compared with the same computation run without a break.
 */
#define _GNU_SOURCE
#include "crtest.h"

enum level { SSE, AVX, AVX512 };
static const char *level_name[] = { "sse", "avx", "avx512" };

/* What goes in, what comes out. */
static uint64_t gp_in[10], gp_out[10];
static unsigned char vin[32 * 64] __attribute__((aligned(64)));
static unsigned char vout[32 * 64] __attribute__((aligned(64)));
static uint64_t kin[8], kout[8];
static long double x87_in[3], x87_out[3];
static uint16_t fcw_in = 0x0e7f, fcw_out; /* toward zero, 53-bit */
static uint32_t mxcsr_in = 0x1f80 | (2u << 13) | 0x8040, mxcsr_out; /* up, FTZ, DAZ */

/* The waiting loop in assembly: access(go) until it succeeds, else
 * nanosleep(5 ms).  Uses rax, rdi, rsi (which we do not hold values in)
 * and rcx, r11 (which the kernel clobbers).  Every operand is a static
 * object addressed relative to rip, so no register is needed for one. */
static struct timespec nap = { 0, 5000000 };
static long wait_rounds;
static uint16_t fcw_save;
static uint32_t mxcsr_save;

#define WAIT_LOOP                                                              \
	"1:\n\t"                                                               \
	"mov $21, %%eax\n\t" /* access */                                      \
	"lea %[go], %%rdi\n\t"                                                 \
	"xor %%esi, %%esi\n\t"                                                 \
	"syscall\n\t"                                                          \
	"test %%rax, %%rax\n\t"                                                \
	"jz 2f\n\t"                                                            \
	"incq %[rounds]\n\t"                                                   \
	"mov $35, %%eax\n\t" /* nanosleep */                                   \
	"lea %[nap], %%rdi\n\t"                                                \
	"xor %%esi, %%esi\n\t"                                                 \
	"syscall\n\t"                                                          \
	"jmp 1b\n"                                                             \
	"2:\n\t"

/* General purpose registers (rbp saved on the stack, below the red zone),
 * x87 stack and control word, MXCSR. */
#define GP_LOAD                                                                \
	"fnstcw %[fcws]\n\t"                                                   \
	"stmxcsr %[mxs]\n\t"                                                   \
	"sub $128, %%rsp\n\t"                                                  \
	"push %%rbp\n\t"                                                       \
	"mov 0+%[gpi], %%rbx\n\t"                                              \
	"mov 8+%[gpi], %%r8\n\t"                                               \
	"mov 16+%[gpi], %%r9\n\t"                                              \
	"mov 24+%[gpi], %%r12\n\t"                                             \
	"mov 32+%[gpi], %%r13\n\t"                                             \
	"mov 40+%[gpi], %%r14\n\t"                                             \
	"mov 48+%[gpi], %%r15\n\t"                                             \
	"mov 56+%[gpi], %%rbp\n\t"                                             \
	"mov 64+%[gpi], %%rdx\n\t"                                             \
	"mov 72+%[gpi], %%r10\n\t"                                             \
	"fldcw %[fcwi]\n\t"                                                    \
	"ldmxcsr %[mxi]\n\t"                                                   \
	"fldt 32+%[x87i]\n\t"                                                  \
	"fldt 16+%[x87i]\n\t"                                                  \
	"fldt 0+%[x87i]\n\t"

#define GP_STORE                                                               \
	"fstpt 0+%[x87o]\n\t"                                                  \
	"fstpt 16+%[x87o]\n\t"                                                 \
	"fstpt 32+%[x87o]\n\t"                                                 \
	"fnstcw %[fcwo]\n\t"                                                   \
	"stmxcsr %[mxo]\n\t"                                                   \
	"mov %%rbx, 0+%[gpo]\n\t"                                              \
	"mov %%r8, 8+%[gpo]\n\t"                                               \
	"mov %%r9, 16+%[gpo]\n\t"                                              \
	"mov %%r12, 24+%[gpo]\n\t"                                             \
	"mov %%r13, 32+%[gpo]\n\t"                                             \
	"mov %%r14, 40+%[gpo]\n\t"                                             \
	"mov %%r15, 48+%[gpo]\n\t"                                             \
	"mov %%rbp, 56+%[gpo]\n\t"                                             \
	"mov %%rdx, 64+%[gpo]\n\t"                                             \
	"mov %%r10, 72+%[gpo]\n\t"                                             \
	"pop %%rbp\n\t"                                                        \
	"add $128, %%rsp\n\t"                                                  \
	"fldcw %[fcws]\n\t"                                                    \
	"ldmxcsr %[mxs]\n\t"

#define OPERANDS                                                               \
	: [rounds] "+m"(wait_rounds), [fcwo] "=m"(fcw_out),                    \
	  [mxo] "=m"(mxcsr_out), [fcws] "=m"(fcw_save),                        \
	  [mxs] "=m"(mxcsr_save), [gpo] "=m"(gp_out), [x87o] "=m"(x87_out),    \
	  [vo] "=m"(vout), [ko] "=m"(kout)                                     \
	: [go] "m"(cr_go), [nap] "m"(nap), [gpi] "m"(gp_in),                   \
	  [x87i] "m"(x87_in), [vi] "m"(vin), [ki] "m"(kin),                    \
	  [fcwi] "m"(fcw_in), [mxi] "m"(mxcsr_in)

#define GP_CLOBBERS                                                            \
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",    \
		"r12", "r13", "r14", "r15", "memory", "cc", "st", "st(1)",     \
		"st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"

#define XMM_CLOBBERS                                                           \
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",        \
		"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",   \
		"xmm15"

#define X(n, off) "movdqu " #off "+%[vi], %%xmm" #n "\n\t"
#define XS(n, off) "movdqu %%xmm" #n ", " #off "+%[vo]\n\t"

static void hold_sse(void)
{
	__asm__ volatile(GP_LOAD
		X(0, 0) X(1, 16) X(2, 32) X(3, 48) X(4, 64) X(5, 80) X(6, 96)
		X(7, 112) X(8, 128) X(9, 144) X(10, 160) X(11, 176) X(12, 192)
		X(13, 208) X(14, 224) X(15, 240)
		WAIT_LOOP
		XS(0, 0) XS(1, 16) XS(2, 32) XS(3, 48) XS(4, 64) XS(5, 80)
		XS(6, 96) XS(7, 112) XS(8, 128) XS(9, 144) XS(10, 160)
		XS(11, 176) XS(12, 192) XS(13, 208) XS(14, 224) XS(15, 240)
		GP_STORE OPERANDS
		: GP_CLOBBERS, XMM_CLOBBERS);
}

#define Y(n, off) "vmovdqu " #off "+%[vi], %%ymm" #n "\n\t"
#define YS(n, off) "vmovdqu %%ymm" #n ", " #off "+%[vo]\n\t"

__attribute__((target("avx"))) static void hold_avx(void)
{
	__asm__ volatile(GP_LOAD
		Y(0, 0) Y(1, 32) Y(2, 64) Y(3, 96) Y(4, 128) Y(5, 160)
		Y(6, 192) Y(7, 224) Y(8, 256) Y(9, 288) Y(10, 320) Y(11, 352)
		Y(12, 384) Y(13, 416) Y(14, 448) Y(15, 480)
		WAIT_LOOP
		YS(0, 0) YS(1, 32) YS(2, 64) YS(3, 96) YS(4, 128) YS(5, 160)
		YS(6, 192) YS(7, 224) YS(8, 256) YS(9, 288) YS(10, 320)
		YS(11, 352) YS(12, 384) YS(13, 416) YS(14, 448) YS(15, 480)
		"vzeroupper\n\t"
		GP_STORE OPERANDS
		: GP_CLOBBERS, XMM_CLOBBERS);
}

#define Z(n, off) "vmovdqu64 " #off "+%[vi], %%zmm" #n "\n\t"
#define ZS(n, off) "vmovdqu64 %%zmm" #n ", " #off "+%[vo]\n\t"

__attribute__((target("avx512f"))) static void hold_avx512(void)
{
	__asm__ volatile(
		GP_LOAD
		Z(0, 0) Z(1, 64) Z(2, 128) Z(3, 192) Z(4, 256) Z(5, 320)
		Z(6, 384) Z(7, 448) Z(8, 512) Z(9, 576) Z(10, 640) Z(11, 704)
		Z(12, 768) Z(13, 832) Z(14, 896) Z(15, 960) Z(16, 1024)
		Z(17, 1088) Z(18, 1152) Z(19, 1216) Z(20, 1280) Z(21, 1344)
		Z(22, 1408) Z(23, 1472) Z(24, 1536) Z(25, 1600) Z(26, 1664)
		Z(27, 1728) Z(28, 1792) Z(29, 1856) Z(30, 1920) Z(31, 1984)
		"kmovw 0+%[ki], %%k1\n\t"
		"kmovw 8+%[ki], %%k2\n\t"
		"kmovw 16+%[ki], %%k3\n\t"
		"kmovw 24+%[ki], %%k4\n\t"
		"kmovw 32+%[ki], %%k5\n\t"
		"kmovw 40+%[ki], %%k6\n\t"
		"kmovw 48+%[ki], %%k7\n\t"
		WAIT_LOOP
		ZS(0, 0) ZS(1, 64) ZS(2, 128) ZS(3, 192) ZS(4, 256) ZS(5, 320)
		ZS(6, 384) ZS(7, 448) ZS(8, 512) ZS(9, 576) ZS(10, 640)
		ZS(11, 704) ZS(12, 768) ZS(13, 832) ZS(14, 896) ZS(15, 960)
		ZS(16, 1024) ZS(17, 1088) ZS(18, 1152) ZS(19, 1216)
		ZS(20, 1280) ZS(21, 1344) ZS(22, 1408) ZS(23, 1472)
		ZS(24, 1536) ZS(25, 1600) ZS(26, 1664) ZS(27, 1728)
		ZS(28, 1792) ZS(29, 1856) ZS(30, 1920) ZS(31, 1984)
		"kmovw %%k1, 0+%[ko]\n\t"
		"kmovw %%k2, 8+%[ko]\n\t"
		"kmovw %%k3, 16+%[ko]\n\t"
		"kmovw %%k4, 24+%[ko]\n\t"
		"kmovw %%k5, 32+%[ko]\n\t"
		"kmovw %%k6, 40+%[ko]\n\t"
		"kmovw %%k7, 48+%[ko]\n\t"
		"vzeroupper\n\t"
		GP_STORE OPERANDS
		: GP_CLOBBERS, XMM_CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19",
		  "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26",
		  "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3",
		  "k4", "k5", "k6", "k7");
}

/* A computation that takes a while, in steps; the state between steps is
 * in memory (and in registers within a step). */
struct calc {
	double s, t;
	long double l;
	float f;
	long i;
};

static void calc_step(struct calc *c, long n)
{
	for (long end = c->i + n; c->i < end; c->i++) {
		double x = (double)(c->i % 1000) * 0.001;
		/* sin(x) by its series, to x^9 */
		double x2 = x * x;
		double sn = x * (1 - x2 / 6 * (1 - x2 / 20 * (1 - x2 / 42 *
							 (1 - x2 / 72))));
		c->s += sn / (1.0 + (double)c->i);
		c->t = c->t * 0.999999 + x2 / (x + 1.0);
		c->l += (long double)1.0 / ((long double)c->i + 1.0L);
		c->f = c->f * 0.9999f + (float)(1 - x2 / 2);
	}
}

static int calc_equal(const struct calc *a, const struct calc *b)
{
	return !memcmp(&a->s, &b->s, sizeof(double)) &&
	       !memcmp(&a->t, &b->t, sizeof(double)) && a->l == b->l &&
	       !memcmp(&a->f, &b->f, sizeof(float)) && a->i == b->i;
}

int main(void)
{
	enum level lv = SSE;
	struct calc c = { 0 }, ref = { 0 };

	cr_init("cr_regs");
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx"))
		lv = AVX;
	if (__builtin_cpu_supports("avx512f"))
		lv = AVX512;
	cr_info("vector registers: %s", level_name[lv]);

	for (int i = 0; i < 10; i++)
		gp_in[i] = 0x0123456789abcdefULL * (uint64_t)(i + 3) ^
			   0xfeedface00000000ULL;
	cr_fill(vin, sizeof(vin), 77);
	for (int i = 0; i < 8; i++)
		kin[i] = 0x1111u * (unsigned)(i + 1) + 0x8001u;
	x87_in[0] = 3.14159265358979323846264338327950288L;
	x87_in[1] = -2.71828182845904523536028747135266250e-300L;
	x87_in[2] = 1.0L / 3.0L;

	calc_step(&c, 200000);

	cr_ready();
	/* The raw wait loop keeps everything in registers. */
	switch (lv) {
	case AVX512:
		hold_avx512();
		break;
	case AVX:
		hold_avx();
		break;
	default:
		hold_sse();
	}

	calc_step(&c, 200000);
	/* The same computation without a break. */
	calc_step(&ref, 400000);
	CHECK(calc_equal(&c, &ref),
	      "floating-point computation differs: %.17g %.17g %.21Lg %.9g "
	      "vs %.17g %.17g %.21Lg %.9g",
	      c.s, c.t, c.l, (double)c.f, ref.s, ref.t, ref.l, (double)ref.f);
	cr_info("computation: %.9f %.9f %.9Lf %.4f", c.s, c.t, c.l,
		(double)c.f);

	static const char *gpn[10] = { "rbx", "r8",  "r9",  "r12", "r13",
				       "r14", "r15", "rbp", "rdx", "r10" };
	for (int i = 0; i < 10; i++)
		CHECK(gp_in[i] == gp_out[i], "%s: %#" PRIx64 ", want %#" PRIx64,
		      gpn[i], gp_out[i], gp_in[i]);
	int nvec = lv == AVX512 ? 32 : 16, vlen = lv == AVX512 ? 64
					       : lv == AVX	? 32
								: 16;
	const char *vname = lv == AVX512 ? "zmm" : lv == AVX ? "ymm" : "xmm";
	for (int r = 0; r < nvec; r++) {
		unsigned char *want =
			vin + r * vlen, *got = vout + r * vlen;
		for (int b = 0; b < vlen; b++)
			if (want[b] != got[b]) {
				CHECK(0, "%s%d: byte %d is %#x, want %#x", vname,
				      r, b, got[b], want[b]);
				break;
			}
	}
	if (lv == AVX512)
		for (int k = 0; k < 7; k++)
			CHECK((kout[k] & 0xffff) == (kin[k] & 0xffff),
			      "k%d: %#" PRIx64 ", want %#" PRIx64, k + 1,
			      kout[k] & 0xffff, kin[k] & 0xffff);
	for (int i = 0; i < 3; i++)
		CHECK(!memcmp(&x87_in[i], &x87_out[i], 10),
		      "x87 st(%d): %.21Lg, want %.21Lg", i, x87_out[i],
		      x87_in[i]);
	CHECK(fcw_out == fcw_in, "x87 control word: %#x, want %#x", fcw_out,
	      fcw_in);
	CHECK(mxcsr_out == mxcsr_in, "MXCSR: %#x, want %#x", mxcsr_out,
	      mxcsr_in);
	return cr_done();
}
