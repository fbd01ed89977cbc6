/*
 * test_frontend.c — the front end from text to typed IR: precedence, statements and
 * layout, several kernels, CSE, weak literals, folding, output casts, reductions,
 * generic kernels with bindings, and ufunc expressions.
 *
 * Expected IR is written as S-expressions by hand from the language's rules (Python's
 * precedence, NumPy 2's promotion and NEP 50); the renderer is the test's own.
 */
#include <locale.h>
#include <math.h>

#include "alloc.h"
#include "test_frontend_util.h"

/* A kernel with the given parameters, outputs and body. */
#define KERNEL(params, outs, body) "kernel k(" params ") -> (" outs ") {\n" body "\n}\n"

static void test_precedence(void) {
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = -a**2"),
               "(neg.f64 (pow.f64 a 2:f64))");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = a + b * c"),
               "(add.f64 a (mul.f64 b c))");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = (a + b) * c"),
               "(mul.f64 (add.f64 a b) c)");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = a - b - c"),
               "(sub.f64 (sub.f64 a b) c)");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = a / b / c"),
               "(div.f64 (div.f64 a b) c)");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = a ** b ** c"),
               "(pow.f64 a (pow.f64 b c))");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = a * -b"),
               "(mul.f64 a (neg.f64 b))");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[], c: f64[]", "y", "y = - -a"), "(neg.f64 (neg.f64 a))");
    CHECK_EXPR(KERNEL("a: f64[]", "y", "y = +a"), "a");
    CHECK_EXPR(KERNEL("a: f64[]", "y", "y = a * 2**-1"), "(mul.f64 a 0.5:f64)");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[]", "y", "y = a + 1 < b * 2"),
               "(lt.bool (add.f64 a 1:f64) (mul.f64 b 2:f64))");
    CHECK_EXPR(KERNEL("a: f64[], b: f64[]", "y", "y = a == b"), "(eq.bool a b)");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = i << 1 + 2"), "(shl.i64 i 3:i64)");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = i + 1 << 2"), "(shl.i64 (add.i64 i 1:i64) 2:i64)");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = i >> 1 - 1"), "(shr.i64 i 0:i64)");
    CHECK_EXPR(KERNEL("i: i64[], j: i64[], m: i64[]", "y", "y = i | j ^ m & 1"),
               "(or.i64 i (xor.i64 j (and.i64 m 1:i64)))");
    CHECK_EXPR(KERNEL("i: i64[], j: i64[]", "y", "y = i & j == j"), "(eq.bool (and.i64 i j) j)");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = i // 2 % 3"), "(mod.i64 (floordiv.i64 i 2:i64) 3:i64)");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = ~i + 1"), "(add.i64 (not.i64 i) 1:i64)");
    /* Literal-only expressions fold with Python's precedence: -2**2 is -(2**2). */
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = -2 ** 2"), "-4:i64");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = 2 ** 3 ** 2"), "512:i64");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = 2 ** -1"), "0.5:f64");
    CHECK_EXPR(KERNEL("i: i64[]", "y", "y = (1 + 2) * 3 - 4 // 3"), "8:i64");
}

static void test_layout(void) {
    /* Statements end at newlines or ';'; blank lines and comments anywhere. */
    const char *src = "# leading comment\n"
                      "\n"
                      "kernel k(x: f32[]) -> (y, z) {   # after the brace\n"
                      "    # a comment line\n"
                      "    let d = x * 2; y = d + 1\n"
                      "\n"
                      "    z = (d +\n"
                      "         1)   # trailing\n"
                      "}\n";
    fusor_status st;
    ir_kernel *k = fe_compile(src, NULL, NULL, &st);
    REQUIRE_VOID(k);
    CHECK(k->noutputs == 2);
    CHECK(!strcmp(fe_render(k, 0), "(add.f32 (mul.f32 x 2:f32) 1:f32)"));
    CHECK(k->outputs[0].node == k->outputs[1].node); /* the same expression, one node */

    CHECK_EXPR("kernel k(\n  x: f32[],\n  t: f32,   # trailing comma allowed\n)\n"
               "  -> (y: f32[])\n{\n  y = x * t\n}",
               "(mul.f32 x t)");
    CHECK_EXPR("kernel k(x: f32[]) -> (y: f32[]) {\n  y = where(x > 0,\n"
               "            x,\n            0)\n}",
               "(where.f32 (gt.bool x 0:f32) x 0:f32)");
    CHECK_EXPR("kernel k(x: f32[]) -> y: f32[] { y = x }", "x");
    CHECK_EXPR("kernel k(x: f32[]) -> y { y = x }", "x");
    CHECK_EXPR("kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]) {  z = a * x + y }",
               "(add.f64 (mul.f64 a x) y)");
    CHECK_EXPR("kernel k(x: f32[]) -> (y) {;; y = x ;;}", "x");
    CHECK_EXPR("kernel k(x: f32[]) -> (y) {\r\n  y = x\r\n}\r\n", "x");
    CHECK_EXPR("kernel k(x: f32[]) -> (y) {\n\ty = x * 2\t# tabs\n}", "(mul.f32 x 2:f32)");
    CHECK_EXPR("kernel k(x: f32[]) -> (y) { y = x } # é comment with UTF-8", "x");
    CHECK_EXPR("kernel k() -> (y) { y = 1 }", "1:i64");
}

static void test_several_kernels(void) {
    const char *src =
        "kernel a(x: f32[]) -> (y) { y = x }\n"
        "kernel b(x: f64[]) -> (y) { y = x * 2 }  kernel c(x: i8[]) -> (y) { y = -x }\n";
    fe_program *p;
    CHECK_OK(fe_parse(&fe_test_arena, src, "three.fu", &p));
    REQUIRE_VOID(p);
    CHECK(fe_num_kernels(p) == 3);
    CHECK(!strcmp(fe_kernel_name(p, 0), "a") && !strcmp(fe_kernel_name(p, 2), "c"));
    CHECK(fe_kernel_name(p, 3) == NULL && fe_kernel_name(p, -1) == NULL);
    int i = -1;
    CHECK_OK(fe_find_kernel(p, "b", &i));
    CHECK(i == 1);
    CHECK(fe_find_kernel(p, NULL, &i) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(fusor_last_error(), "a, b, c") != NULL);
    CHECK(fe_find_kernel(p, "zz", &i) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(fusor_last_error(), "'zz'") && strstr(fusor_last_error(), "a, b, c"));
    ir_kernel *k = fe_compile(src, "c", NULL, NULL);
    CHECK(!strcmp(fe_render(k, 0), "(neg.i8 x)"));
    k = fe_compile(src, "b", NULL, NULL);
    CHECK(!strcmp(fe_render(k, 0), "(mul.f64 x 2:f64)"));
    CHECK(k && !strcmp(k->name, "b"));
}

static void test_cse(void) {
    ir_kernel *k = fe_compile(KERNEL("x: f64[], y: f64[]", "z", "z = x*y + x*y"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->nnodes == 4); /* x, y, x*y, + */
    k = fe_compile(KERNEL("x: f64[], y: f64[]", "z", "let p = x*y\nz = p + x*y"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->nnodes == 4);
    k = fe_compile(KERNEL("x: f64[], y: f64[]", "z", "z = x*2 + y*2"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->nnodes == 6); /* x, 2, x*2, y, y*2, + : the constant is shared */
    /* Unused parameters and unused lets leave nothing in the IR. */
    k = fe_compile(KERNEL("x: f64[], y: f64[]", "z", "let unused = y * 3\nz = x"), NULL, NULL,
                   NULL);
    REQUIRE_VOID(k);
    CHECK(k->nparams == 2 && k->nnodes == 1); /* only x */
}

static void test_weak_literals(void) {
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = x + 1"), "(add.f32 x 1:f32)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = 1 + x"), "(add.f32 1:f32 x)");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = x + 1.5"), "(add.f64 (cast.f64 x) 1.5:f64)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = x + 2.5"), "(add.f32 x 2.5:f32)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = x * 0.1"), "(mul.f32 x 0.10000000149011612:f32)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = x + 16777217"), "(add.f32 x 16777216:f32)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b + 1"), "(add.i64 (cast.i64 b) 1:i64)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b + 1.0"), "(add.f64 (cast.f64 b) 1:f64)");
    CHECK_EXPR(KERNEL("u: u8[]", "y", "y = u + 255"), "(add.u8 u 255:u8)");
    CHECK_EXPR(KERNEL("u: u64[]", "y", "y = u + 1"), "(add.u64 u 1:u64)");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = x * -128"), "(mul.i8 x -128:i8)");
    CHECK_EXPR(KERNEL("x: i64[]", "y", "y = x < 2.5"), "(lt.bool (cast.f64 x) 2.5:f64)");
    /* NumPy 2 compares with an out-of-range Python int exactly. */
    CHECK_EXPR(KERNEL("u: u8[]", "y", "y = u < -1"), "(lt.bool (cast.i64 u) -1:i64)");
    CHECK_EXPR(KERNEL("u: u8[]", "y", "y = 300 != u"), "(ne.bool 300:i64 (cast.i64 u))");
    CHECK_EXPR(KERNEL("u: u64[]", "y", "y = u >= -1"), "(ge.bool (cast.f64 u) -1:f64)");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = x + (100 + 27)"), "(add.i8 x 127:i8)");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = x + sqrt(4)"), "(add.f64 (cast.f64 x) 2:f64)");
    CHECK_EXPR(KERNEL("x: i16[]", "y", "y = x ** 2"), "(pow.i16 x 2:i16)");
    CHECK_EXPR(KERNEL("x: i16[]", "y", "y = 2 ** x"), "(pow.i16 2:i16 x)");
    CHECK_EXPR(KERNEL("x: i16[]", "y", "y = x ** 2.0"), "(pow.f64 (cast.f64 x) 2:f64)");
    /* true and false are bools: the lowest kind. */
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = x + true"), "(add.i8 x 1:i8)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b & false"), "(and.bool b 0:bool)");
}

static void test_folding(void) {
    ir_kernel *k = fe_compile(KERNEL("x: f64[]", "y", "y = x * (2*pi)"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->nnodes == 3);
    CHECK(!strcmp(fe_render(k, 0), "(mul.f64 x 6.2831853071795862:f64)"));
    k = fe_compile(KERNEL("x: f32[]", "y", "y = x * cos(0.5)"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->nnodes == 3 && k->nodes[1].op == IR_CONST && k->nodes[1].dtype == FUSOR_F32);
    CHECK(k->nodes[1].imm.f == (double)(float)cos(0.5));

    /* Python's semantics for literals; the result stays weak (default dtype here). */
    CHECK_EXPR(KERNEL("", "y", "y = 1 / 3"), "0.33333333333333331:f64");
    CHECK_EXPR(KERNEL("", "y", "y = 7 // -2"), "-4:i64");
    CHECK_EXPR(KERNEL("", "y", "y = -7 // 2"), "-4:i64");
    CHECK_EXPR(KERNEL("", "y", "y = -7 % 3"), "2:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 7 % -3"), "-2:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 7.5 // 2"), "3:f64");
    CHECK_EXPR(KERNEL("", "y", "y = -7.5 % 2"), "0.5:f64");
    CHECK_EXPR(KERNEL("", "y", "y = 2**62"), "4611686018427387904:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 1 << 62"), "4611686018427387904:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 10 >> 1"), "5:i64");
    CHECK_EXPR(KERNEL("", "y", "y = -1 >> 100"), "-1:i64");
    CHECK_EXPR(KERNEL("", "y", "y = ~5"), "-6:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 6 & 3 | 8 ^ 1"), "11:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 0x10 + 1"), "17:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 1e-3 * 2E5"), "200:f64");
    CHECK_EXPR(KERNEL("", "y", "y = .5 + 2."), "2.5:f64");
    CHECK_EXPR(KERNEL("", "y", "y = true + true"), "1:bool"); /* NumPy: logical or */
    CHECK_EXPR(KERNEL("", "y", "y = true + 1"), "2:i64");
    CHECK_EXPR(KERNEL("", "y", "y = 1 < 2"), "1:bool");
    CHECK_EXPR(KERNEL("", "y", "y = 2.5 >= 3"), "0:bool");
    CHECK_EXPR(KERNEL("", "y", "y = sqrt(16)"), "4:f64");
    CHECK_EXPR(KERNEL("", "y", "y = abs(-3)"), "3:i64");
    CHECK_EXPR(KERNEL("", "y", "y = sign(-2.5)"), "-1:f64");
    CHECK_EXPR(KERNEL("", "y", "y = floor(2.5)"), "2:f64");
    CHECK_EXPR(KERNEL("", "y", "y = floor(7)"), "7:i64");
    CHECK_EXPR(KERNEL("", "y", "y = minimum(1, 2.5)"), "1:f64");
    CHECK_EXPR(KERNEL("", "y", "y = where(true, 1, 2.5)"), "1:f64");
    CHECK_EXPR(KERNEL("", "y", "y = clip(5, 0, 3)"), "3:i64");
    CHECK_EXPR(KERNEL("", "y", "y = isnan(nan)"), "1:bool");
    CHECK_EXPR(KERNEL("", "y", "y = power(2, 10)"), "1024:i64");
    CHECK_EXPR(KERNEL("", "y", "y = fmod(-7, 3)"), "-1:i64");
    CHECK_EXPR(KERNEL("", "y", "y = -inf"), "-inf:f64");
    CHECK_EXPR(KERNEL("", "y", "y = e"), "2.7182818284590451:f64");
    /* Casts make strong constants, folded with the CAST rules. */
    CHECK_EXPR(KERNEL("", "y", "y = f32(2) * 3"), "6:f32");
    CHECK_EXPR(KERNEL("", "y", "y = i32(2.7)"), "2:i32");
    CHECK_EXPR(KERNEL("", "y", "y = i32(-2.7)"), "-2:i32");
    CHECK_EXPR(KERNEL("", "y", "y = u8(200) + u8(100)"), "44:u8"); /* wraps like NumPy */
    CHECK_EXPR(KERNEL("", "y", "y = bool(0.5)"), "1:bool");
    CHECK_EXPR(KERNEL("", "y", "y = i8(1) // i8(0)"), "0:i8");
    CHECK_EXPR(KERNEL("x: f64[]", "y", "y = x + f32(0.1)"), "(add.f64 x 0.10000000149011612:f64)");
    /* A parameter or binding may shadow a constant. */
    CHECK_EXPR(KERNEL("e: f32[]", "y", "y = e * 2"), "(mul.f32 e 2:f32)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "let pi = 3\ny = x * pi"), "(mul.f32 x 3:f32)");
}

static void test_output_casts(void) {
    CHECK_EXPR("kernel k(x: f32[]) -> (y: f64[]) { y = x }", "(cast.f64 x)");
    CHECK_EXPR("kernel k(x: u8[]) -> (y: i16[]) { y = x }", "(cast.i16 x)");
    CHECK_EXPR("kernel k(x: i32[]) -> (y: f64[]) { y = x }", "(cast.f64 x)");
    CHECK_EXPR("kernel k(x: bool[]) -> (y: u8[]) { y = x }", "(cast.u8 x)");
    CHECK_EXPR("kernel k(x: f32[]) -> (y: u8[]) { y = 255 }", "255:u8");
    CHECK_EXPR("kernel k(x: f32[]) -> (y: f32) { y = 2.5 }", "2.5:f32");
    CHECK_EXPR("kernel k(x: f32[]) -> (y: f64) { y = 1 }", "1:f64");
    CHECK_EXPR("kernel k(x: f32[]) -> (y: f32[]) { y = f32(x * 2.0) }", "(mul.f32 x 2:f32)");
    CHECK_EXPR("kernel k(x: f64[]) -> (y: f32[]) { y = f32(x) }", "(cast.f32 x)");
    CHECK_EXPR("kernel k(x: f64[]) -> (y: i32[]) { y = i32(x) }", "(cast.i32 x)");

    ir_kernel *k = fe_compile("kernel k(x: f32[]) -> (y: f32[]) { y = 2 }", NULL, NULL, NULL);
    REQUIRE_VOID(k);
    /* An array output may be filled with a uniform value. */
    CHECK(k->outputs[0].is_array == 1 && k->nodes[k->outputs[0].node].shape == IR_UNIFORM);
}

static void test_reductions(void) {
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = sum(x)"), "(sum.i64 (cast.i64 x))");
    CHECK_EXPR(KERNEL("x: u16[]", "y", "y = sum(x)"), "(sum.u64 (cast.u64 x))");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = sum(x)"), "(sum.f32 x)");
    CHECK_EXPR(KERNEL("x: bool[]", "y", "y = sum(x)"), "(sum.i64 (cast.i64 x))");
    CHECK_EXPR(KERNEL("x: u8[]", "y", "y = prod(x)"), "(prod.u64 (cast.u64 x))");
    CHECK_EXPR(KERNEL("x: i16[]", "y", "y = max(x)"), "(max.i16 x)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = min(x)"), "(min.f32 x)");
    CHECK_EXPR(KERNEL("x: i32[]", "y", "y = mean(x)"),
               "(div.f64 (sum.f64 (cast.f64 x)) (cast.f64 (count.i64)))");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = mean(x)"),
               "(div.f32 (sum.f32 x) (cast.f32 (count.i64)))");
    CHECK_EXPR(KERNEL("x: f64[]", "y", "y = any(x)"), "(any.bool (cast.bool x))");
    CHECK_EXPR(KERNEL("x: bool[]", "y", "y = all(x)"), "(all.bool x)");
    CHECK_EXPR(KERNEL("x: f64[]", "y", "y = sum(x - max(x))"), "(sum.f64 (sub.f64 x (max.f64 x)))");

    ir_kernel *k = fe_compile(
        "kernel softmax(x: f64[]) -> (p: f64[]) {\n  let y = exp(x - max(x))\n  p = y / sum(y)\n}",
        NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 0), "(div.f64 (exp.f64 (sub.f64 x (max.f64 x))) "
                                   "(sum.f64 (exp.f64 (sub.f64 x (max.f64 x)))))"));
    CHECK(k->nodes[k->outputs[0].node].shape == IR_VARYING);
    k = fe_compile("kernel n(x: f32[]) -> (norm: f32) { norm = sqrt(sum(x*x)) }", NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 0), "(sqrt.f32 (sum.f32 (mul.f32 x x)))"));
    CHECK(k->outputs[0].is_array == 0 && k->nodes[k->outputs[0].node].shape == IR_UNIFORM);
    k = fe_compile(KERNEL("x: i32[]", "s", "s = sum(x) + 1"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->outputs[0].is_array == 0 && k->outputs[0].dtype == FUSOR_I64);
}

static void test_where_clip_and_lowering(void) {
    CHECK_EXPR(KERNEL("x: i32[]", "y", "y = where(x, 1, 2.5)"),
               "(where.f64 (cast.bool x) 1:f64 2.5:f64)");
    CHECK_EXPR(KERNEL("x: i8[], z: u8[]", "y", "y = where(x > 0, x, z)"),
               "(where.i16 (gt.bool x 0:i8) (cast.i16 x) (cast.i16 z))");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = where(x > 0, 1, 2)"),
               "(where.i64 (gt.bool x 0:i8) 1:i64 2:i64)");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = clip(x, 0, 300)"), "(maximum.i8 x 0:i8)");
    CHECK_EXPR(KERNEL("x: u8[]", "y", "y = clip(x, -1, 50)"), "(minimum.u8 x 50:u8)");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = clip(x, 0, 1)"),
               "(minimum.f32 (maximum.f32 x 0:f32) 1:f32)");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = clip(x, 0, 1.5)"),
               "(minimum.f64 (maximum.f64 (cast.f64 x) 0:f64) 1.5:f64)");

    ir_kernel *k = fe_compile(KERNEL("x: i64[]", "y", "y = isnan(x)"), NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 0), "0:bool"));
    CHECK(k->outputs[0].is_array == 1 && k->nodes[k->outputs[0].node].shape == IR_VARYING);
    CHECK_EXPR(KERNEL("x: u16[]", "y", "y = isfinite(x)"), "1:bool");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = isinf(x)"), "(isinf.bool x)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b + b"), "(or.bool b b)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b * b"), "(and.bool b b)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = ~b"), "(not.bool b)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b ^ b"), "(xor.bool b b)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = maximum(b, b)"), "(or.bool b b)");
    CHECK_EXPR(KERNEL("b: bool[]", "y", "y = b // b"), "(floordiv.i8 (cast.i8 b) (cast.i8 b))");
    CHECK_EXPR(KERNEL("x: i32[]", "y", "y = ~x"), "(not.i32 x)");
    CHECK_EXPR(KERNEL("x: u8[]", "y", "y = abs(x)"), "x");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = abs(x)"), "(abs.i8 x)");
    CHECK_EXPR(KERNEL("x: u8[]", "y", "y = -x"), "(neg.u8 x)");
    CHECK_EXPR(KERNEL("x: i32[]", "y", "y = floor(x)"), "x");
    CHECK_EXPR(KERNEL("x: i32[]", "y", "y = rint(x)"), "(rint.f64 (cast.f64 x))");
    CHECK_EXPR(KERNEL("x: i8[]", "y", "y = sin(x)"), "(sin.f16 (cast.f16 x))"); /* as NumPy */
    CHECK_EXPR(KERNEL("x: f16[]", "y", "y = x * 2.5"), "(mul.f16 x 2.5:f16)");
    CHECK_EXPR(KERNEL("x: f16[], z: f32[]", "y", "y = x + z"), "(add.f32 (cast.f32 x) z)");
    CHECK_EXPR(KERNEL("x: f16[], z: i16[]", "y", "y = x + z"),
               "(add.f32 (cast.f32 x) (cast.f32 z))");
    CHECK_EXPR(KERNEL("x: f64[]", "y", "y = f16(x)"), "(cast.f16 x)");
    CHECK_EXPR(KERNEL("x: i32[], z: f32[]", "y", "y = arctan2(x, z)"),
               "(arctan2.f64 (cast.f64 x) (cast.f64 z))");
    CHECK_EXPR(KERNEL("x: f32[]", "y", "y = x / 2"), "(div.f32 x 2:f32)");
    CHECK_EXPR(KERNEL("x: i32[]", "y", "y = x / 2"), "(div.f64 (cast.f64 x) 2:f64)");
}

static void test_outputs_and_params(void) {
    CHECK_EXPR("kernel k(x: f32[]) -> (z, w) { z = x + 1; w = z * 2 }", "(add.f32 x 1:f32)");
    ir_kernel *k = fe_compile("kernel k(x: f32[], s: i8) -> (z: f64[], w, t: i64) {\n"
                              "  z = x\n  w = z + 1\n  t = s\n}",
                              NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 1), "(add.f64 (cast.f64 x) 1:f64)"));
    CHECK(k->nparams == 2 && !strcmp(k->params[0].name, "x") && !strcmp(k->params[1].name, "s"));
    CHECK(k->params[0].dtype == FUSOR_F32 && k->params[0].is_array == 1);
    CHECK(k->params[1].dtype == FUSOR_I8 && k->params[1].is_array == 0);
    CHECK(k->noutputs == 3 && !strcmp(k->outputs[2].name, "t"));
    CHECK(k->outputs[1].dtype == FUSOR_F64 && k->outputs[1].is_array == 1);
    CHECK(k->outputs[2].dtype == FUSOR_I64 && k->outputs[2].is_array == 0);
    CHECK(!strcmp(fe_render(k, 2), "(cast.i64 s)"));
    /* INPUT nodes: imm.i is the parameter index; arrays vary, scalars are uniform. */
    int seen = 0;
    for (int i = 0; i < k->nnodes; i++) {
        if (k->nodes[i].op != IR_INPUT)
            continue;
        seen++;
        int p = (int)k->nodes[i].imm.i;
        CHECK(k->nodes[i].shape == (k->params[p].is_array ? IR_VARYING : IR_UNIFORM));
        CHECK(k->nodes[i].dtype == k->params[p].dtype);
    }
    CHECK(seen == 2);
    CHECK(k->cse == NULL); /* ir_finish was called */

    fe_program *p;
    CHECK_OK(fe_parse(&fe_test_arena, "kernel k(a: f32[], b) -> (c: i8, d) { c = 1; d = b }",
                      "p.fu", &p));
    REQUIRE_VOID(p);
    CHECK(fe_num_params(p, 0) == 4);
    fusor_param_info a = fe_param(p, 0, 0), b = fe_param(p, 0, 1), c = fe_param(p, 0, 2),
                     d = fe_param(p, 0, 3);
    CHECK(!strcmp(a.name, "a") && a.dtype == FUSOR_F32 && a.is_array == 1 && !a.is_output);
    CHECK(b.dtype == FUSOR_NUM_DTYPES && b.is_array == -1 && !b.is_output);
    CHECK(!strcmp(c.name, "c") && c.dtype == FUSOR_I8 && c.is_array == 0 && c.is_output);
    CHECK(d.dtype == FUSOR_NUM_DTYPES && d.is_array == -1 && d.is_output);
    CHECK(fe_param(p, 0, 4).name == NULL);
    CHECK(fe_is_generic(p, 0) == 1);
}

static void test_generic(void) {
    const char *src = "kernel g(a, b) -> (c) { c = a * b }";
    fusor_status st;
    fe_binding arr_scalar[2] = {{FUSOR_F32, 1, NULL}, {FUSOR_F64, 0, NULL}};
    ir_kernel *k = fe_compile(src, NULL, arr_scalar, &st);
    REQUIRE_VOID(k);
    /* A typed scalar is strong (NumPy 2): f32 array * f64 scalar is f64. */
    CHECK(!strcmp(fe_render(k, 0), "(mul.f64 (cast.f64 a) b)"));
    CHECK(k->params[0].dtype == FUSOR_F32 && k->params[0].is_array == 1);
    CHECK(k->params[1].dtype == FUSOR_F64 && k->params[1].is_array == 0);
    CHECK(k->outputs[0].dtype == FUSOR_F64 && k->outputs[0].is_array == 1);

    fe_binding arr_lit[2] = {{FUSOR_F32, 1, NULL}, {FUSOR_F64, 0, "2"}};
    k = fe_compile(src, NULL, arr_lit, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 0), "(mul.f32 a 2:f32)"));
    CHECK(k->outputs[0].dtype == FUSOR_F32 && k->outputs[0].is_array == 1);
    CHECK(k->nparams == 2 && k->params[1].is_array == 0);

    fe_binding lit_lit[2] = {{0, 0, "2.5"}, {0, 0, "-4"}};
    k = fe_compile(src, NULL, lit_lit, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 0), "-10:f64"));
    CHECK(k->outputs[0].is_array == 0);

    fe_binding i8_lit[2] = {{FUSOR_I8, 1, NULL}, {0, 0, "300"}};
    CHECK(fe_compile(src, NULL, i8_lit, &st) == NULL && st == FUSOR_ERROR_LANGUAGE);
    CHECK(strstr(fusor_last_error(), "does not fit i8") != NULL);

    fe_binding bad_lit[2] = {{FUSOR_I8, 1, NULL}, {0, 0, "2 +"}};
    CHECK(fe_compile(src, NULL, bad_lit, &st) == NULL && st == FUSOR_ERROR_LANGUAGE);
    CHECK(strstr(fusor_last_error(), "<literal for 'b'>:1:4: error:") != NULL);
    fe_binding name_lit[2] = {{FUSOR_I8, 1, NULL}, {0, 0, "a"}};
    CHECK(fe_compile(src, NULL, name_lit, &st) == NULL && st == FUSOR_ERROR_LANGUAGE);

    CHECK(fe_compile(src, NULL, NULL, &st) == NULL && st == FUSOR_ERROR_INVALID_ARGUMENT);
    fe_binding bad_dtype[2] = {{FUSOR_NUM_DTYPES, 1, NULL}, {FUSOR_F64, 0, NULL}};
    CHECK(fe_compile(src, NULL, bad_dtype, &st) == NULL && st == FUSOR_ERROR_INVALID_ARGUMENT);

    /* Declared parameters ignore their bindings; a generic output alone needs none. */
    fe_binding mixed[2] = {{FUSOR_U8, 0, NULL}, {0, 0, "3"}};
    k = fe_compile("kernel h(x: f32[], s) -> (y: f32[]) { y = x * s }", NULL, mixed, NULL);
    REQUIRE_VOID(k);
    CHECK(!strcmp(fe_render(k, 0), "(mul.f32 x 3:f32)"));
    k = fe_compile("kernel h(x: i16[]) -> (y) { y = x + 1 }", NULL, NULL, NULL);
    REQUIRE_VOID(k);
    CHECK(k->outputs[0].dtype == FUSOR_I16 && k->outputs[0].is_array == 1);
    fe_program *p;
    CHECK_OK(fe_parse(&fe_test_arena, "kernel h(x: i16[]) -> (y) { y = x + 1 }", NULL, &p));
    CHECK(p && fe_is_generic(p, 0) == 0);

    /* One parsed program is checked once per signature. */
    CHECK_OK(fe_parse(&fe_test_arena, src, NULL, &p));
    REQUIRE_VOID(p);
    fe_binding sig1[2] = {{FUSOR_I8, 1, NULL}, {FUSOR_I8, 1, NULL}};
    fe_binding sig2[2] = {{FUSOR_U8, 0, NULL}, {FUSOR_BOOL, 0, "true"}};
    ir_kernel *k1, *k2;
    CHECK_OK(fe_check(&fe_test_arena, p, 0, sig1, &k1));
    CHECK_OK(fe_check(&fe_test_arena, p, 0, sig2, &k2));
    CHECK(!strcmp(fe_render(k1, 0), "(mul.i8 a b)") && k1->outputs[0].is_array == 1);
    CHECK(!strcmp(fe_render(k2, 0), "(mul.u8 a 1:u8)") && k2->outputs[0].is_array == 0);
    CHECK(k2->params[1].dtype == FUSOR_BOOL && k2->params[1].is_array == 0);
}

static void test_ufunc_expressions(void) {
    fe_program *p;
    CHECK_OK(fe_parse_expr(&fe_test_arena, "a*sin(b)+1", &p));
    REQUIRE_VOID(p);
    CHECK(fe_num_kernels(p) == 1 && !strcmp(fe_kernel_name(p, 0), "ufunc"));
    CHECK(fe_num_params(p, 0) == 3 && fe_is_generic(p, 0));
    CHECK(!strcmp(fe_param(p, 0, 0).name, "a") && !strcmp(fe_param(p, 0, 1).name, "b"));
    CHECK(!strcmp(fe_param(p, 0, 2).name, "out") && fe_param(p, 0, 2).is_output);
    fe_binding b[2] = {{FUSOR_F64, 1, NULL}, {FUSOR_F32, 1, NULL}};
    ir_kernel *k;
    CHECK_OK(fe_check(&fe_test_arena, p, 0, b, &k));
    CHECK(!strcmp(fe_render(k, 0), "(add.f64 (mul.f64 a (cast.f64 (sin.f32 b))) 1:f64)"));

    CHECK_OK(fe_parse_expr(&fe_test_arena, "b + a*b + pi + e + sin(c) + inf", &p));
    REQUIRE_VOID(p);
    CHECK(fe_num_params(p, 0) == 4);
    CHECK(!strcmp(fe_param(p, 0, 0).name, "b") && !strcmp(fe_param(p, 0, 1).name, "a") &&
          !strcmp(fe_param(p, 0, 2).name, "c"));

    CHECK_OK(fe_parse_expr(&fe_test_arena, "z + y + where(x, z, y)", &p));
    REQUIRE_VOID(p);
    CHECK(!strcmp(fe_param(p, 0, 0).name, "z") && !strcmp(fe_param(p, 0, 1).name, "y") &&
          !strcmp(fe_param(p, 0, 2).name, "x"));

    CHECK_OK(fe_parse_expr(&fe_test_arena, "2*pi", &p));
    REQUIRE_VOID(p);
    CHECK(fe_num_params(p, 0) == 1 && !fe_is_generic(p, 0));
    CHECK_OK(fe_check(&fe_test_arena, p, 0, NULL, &k));
    CHECK(!strcmp(fe_render(k, 0), "6.2831853071795862:f64") && k->outputs[0].is_array == 0);

    CHECK_OK(fe_parse_expr(&fe_test_arena, "(x +\n y)\n", &p));
    CHECK(fe_parse_expr(&fe_test_arena, "x +\n y", &p) == FUSOR_ERROR_LANGUAGE);
    CHECK(strstr(fusor_last_error(), "<expression>:1:4: error: expected an expression") != NULL);
    CHECK(fe_parse_expr(&fe_test_arena, "out + 1", &p) == FUSOR_ERROR_LANGUAGE);
    CHECK(strstr(fusor_last_error(), "'out'") != NULL);
    CHECK(fe_parse_expr(&fe_test_arena, "", &p) == FUSOR_ERROR_LANGUAGE);
}

static void test_locale_independence(void) {
    /* A program may have set a locale whose decimal point is ','. */
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8") && !setlocale(LC_NUMERIC, "fr_FR.UTF-8"))
        return;
    CHECK_EXPR(KERNEL("", "y", "y = 2.5 * 1"), "2.5:f64");
    setlocale(LC_NUMERIC, "C");
}

/* Every allocation failure ends in a clean FUSOR_ERROR_OUT_OF_MEMORY.  The source is big
 * enough to need several arena blocks and several growths of every table. */
static void test_out_of_memory(void) {
    static char src[40000];
    size_t n = (size_t)snprintf(src, sizeof src,
                                "kernel k(x: f32[], y: f32[], t) -> (z, s: f64) {\n"
                                "  let d0 = y - x\n");
    for (int i = 1; i < 400; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "  let d%d = d%d * 1.5 + x\n", i, i - 1);
    snprintf(src + n, sizeof src - n,
             "  z = where(d399 > 0, sin(d399), clip(d399, -1, 1))\n"
             "  s = sum(f64(z)) + mean(x) * t\n}\n");
    fe_binding b[3] = {{0}, {0}, {FUSOR_F32, 0, "2.5"}};
    int ok = 0, tries;
    for (tries = 0; tries < 100000 && !ok; tries++) {
        arena a;
        arena_init(&a);
        fe_program *p;
        ir_kernel *k;
        fu_alloc_fail_after(tries);
        fusor_status st = fe_parse(&a, src, "oom.fu", &p);
        if (st == FUSOR_OK)
            st = fe_check(&a, p, 0, b, &k);
        fu_alloc_fail_after(-1);
        CHECK_MSG(st == FUSOR_OK || st == FUSOR_ERROR_OUT_OF_MEMORY, "tries=%d: %s", tries,
                  fusor_last_error());
        if (st == FUSOR_OK)
            CHECK(fe_ir_ok(k) && k->noutputs == 2);
        ok = st == FUSOR_OK;
        arena_free(&a);
    }
    CHECK_MSG(ok && tries > 10, "first success after %d allocations", tries);
}

int main(void) {
    arena_init(&fe_test_arena);
    test_precedence();
    test_layout();
    test_several_kernels();
    test_cse();
    test_weak_literals();
    test_folding();
    test_output_casts();
    test_reductions();
    test_where_clip_and_lowering();
    test_outputs_and_params();
    test_generic();
    test_ufunc_expressions();
    test_locale_independence();
    test_out_of_memory();
    arena_free(&fe_test_arena);
    return check_done();
}
