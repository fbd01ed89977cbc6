/*
 * typing.h — NumPy 2's type resolution for the language, as data.
 *
 * Which loop NumPy picks for an operation (the dtypes its operands are cast to and its
 * result dtype), np.result_type, can_cast 'safe' and the reductions' result dtypes all
 * come from typetable.inc, which scripts/gen_typetable.py generates by asking NumPy.
 * Operand kinds are the fusor dtypes plus weak (Python) int and float literals (NEP 50).
 */
#ifndef FUSOR_TYPING_H
#define FUSOR_TYPING_H

#include "fusor.h"
#include "typetable.inc"

enum { TY_WEAK_INT = FUSOR_NUM_DTYPES, TY_WEAK_FLOAT };

typedef enum ty_ufunc {
#define TY_ENUM(e, name, arity) TY_##e,
    TY_UFUNCS(TY_ENUM)
#undef TY_ENUM
        TY_NUM_UFUNCS
} ty_ufunc;

typedef enum ty_reduction { TY_SUM, TY_PROD, TY_MIN, TY_MAX, TY_MEAN } ty_reduction;

int ty_arity(ty_ufunc f);
const char *ty_name(ty_ufunc f);
/* "i8", ..., "int", "float". */
const char *ty_kind_name(int kind);
const char *ty_numpy_version(void);

/* The loop NumPy picks for `kinds` (ty_arity(f) of them): loop[0..arity) are the dtypes the
 * operands are cast to and loop[arity] the result.  Returns 0 where NumPy raises. */
int ty_resolve(ty_ufunc f, const int *kinds, fusor_dtype *loop);
/* np.result_type of two kinds; 0 where NumPy raises.  Two weak kinds give NumPy's
 * default dtype (the caller keeps such a result weak). */
int ty_result_type(int a, int b, fusor_dtype *out);
/* np.result_type of three kinds (what np.clip computes in).  NumPy's promotion of several
 * operands is not the pairwise one: result_type(i8, u16, f32) is f32. */
int ty_result_type3(int a, int b, int c, fusor_dtype *out);
int ty_can_cast_safe(fusor_dtype from, fusor_dtype to);
fusor_dtype ty_reduce_dtype(ty_reduction r, fusor_dtype operand);

#endif
