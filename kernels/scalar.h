/*
 * scalar.h — the semantics of one IR operation on one element.
 *
 * This is the executable definition that the interpreter, the constant folder and the
 * tests share (see ir.h for the rules in words).  Values are in canonical ir_value form.
 */
#ifndef FUSOR_SCALAR_H
#define FUSOR_SCALAR_H

#include "ir.h"

/* Converts v (of dtype `from`) to dtype `to` (the CAST rules). */
ir_value sc_cast(ir_value v, fusor_dtype from, fusor_dtype to);
/* Applies a non-reduction, non-leaf op.  `adtype` is the operand dtype and `dtype` the
 * result dtype, as in ir_node.  Unused operands are ignored. */
ir_value sc_apply(ir_op op, fusor_dtype dtype, fusor_dtype adtype, ir_value a, ir_value b,
                  ir_value c);

/* Reductions: identity, folding one more value (or a partial result) in, and the
 * reduction's value from its accumulator.  An f16 reduction accumulates in f32 (as
 * NumPy's float16 add.reduce does) and is rounded to half once, by sc_reduce_finish;
 * for every other dtype sc_reduce_finish returns acc. */
ir_value sc_reduce_identity(ir_op op, fusor_dtype dtype);
ir_value sc_reduce_combine(ir_op op, fusor_dtype dtype, ir_value acc, ir_value v);
ir_value sc_reduce_finish(ir_op op, fusor_dtype dtype, ir_value acc);

/* x rounded to the nearest IEEE half (fusor_f16_from_f64), as a double. */
double sc_round_half(double x);

/* Loads one element of `dtype` from memory into canonical form, and stores it back. */
ir_value sc_load(const void *p, fusor_dtype dtype);
void sc_store(void *p, fusor_dtype dtype, ir_value v);

/* Formats a value for people (round-trip exact: 17 significant digits for f64, 9 for
 * f32, 5 for f16; bools as true/false).  Returns the number of characters written (snprintf). */
int sc_format(char *buf, size_t n, ir_value v, fusor_dtype dtype);

/* Whether v (canonical, of dtype `from`) converts to dtype `to` without changing value. */
int sc_fits(ir_value v, fusor_dtype from, fusor_dtype to);

#endif
