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

/* Reductions: identity, and folding one more value (or a partial result) in. */
ir_value sc_reduce_identity(ir_op op, fusor_dtype dtype);
ir_value sc_reduce_combine(ir_op op, fusor_dtype dtype, ir_value acc, ir_value v);

/* Loads one element of `dtype` from memory into canonical form, and stores it back. */
ir_value sc_load(const void *p, fusor_dtype dtype);
void sc_store(void *p, fusor_dtype dtype, ir_value v);

/* Formats a value for people (round-trip exact: 17 significant digits for f64, 9 for
 * f32; bools as true/false).  Returns the number of characters written (snprintf). */
int sc_format(char *buf, size_t n, ir_value v, fusor_dtype dtype);

/* Whether v (canonical, of dtype `from`) converts to dtype `to` without changing value. */
int sc_fits(ir_value v, fusor_dtype from, fusor_dtype to);

#endif
