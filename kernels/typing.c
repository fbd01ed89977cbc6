/* typing.c — lookups in the generated NumPy type tables (see typing.h). */
#include "typing.h"

#define TY_TYPETABLE_DATA
#include "typetable.inc"

static const struct {
    const char *name;
    int arity;
} ufuncs[TY_NUM_UFUNCS] = {
#define TY_INFO(e, name, arity) [TY_##e] = {name, arity},
    TY_UFUNCS(TY_INFO)
#undef TY_INFO
};

_Static_assert(sizeof ty_loops / sizeof ty_loops[0] == TY_NUM_UFUNCS, "typetable is stale");
_Static_assert(TY_NUM_KINDS == FUSOR_NUM_DTYPES + 2, "typetable has other kinds");

int ty_arity(ty_ufunc f) { return (unsigned)f < TY_NUM_UFUNCS ? ufuncs[f].arity : 0; }
const char *ty_name(ty_ufunc f) { return (unsigned)f < TY_NUM_UFUNCS ? ufuncs[f].name : "?"; }
const char *ty_numpy_version(void) { return TY_NUMPY_VERSION; }

const char *ty_kind_name(int kind) {
    if (kind == TY_WEAK_INT)
        return "int";
    if (kind == TY_WEAK_FLOAT)
        return "float";
    return fusor_dtype_name((fusor_dtype)kind);
}

/* A table letter to its dtype, or -1 for '-' (NumPy raises). */
static int decode(char c) {
    for (int d = 0; d < FUSOR_NUM_DTYPES; d++)
        if (TY_DTYPE_CODES[d] == c)
            return d;
    return -1;
}

static int valid_kind(int k) { return k >= 0 && k < TY_NUM_KINDS; }

int ty_resolve(ty_ufunc f, const int *kinds, fusor_dtype *loop) {
    int arity = ty_arity(f);
    if (!arity)
        return 0;
    int index = 0;
    for (int i = 0; i < arity; i++) {
        if (!valid_kind(kinds[i]))
            return 0;
        index = index * TY_NUM_KINDS + kinds[i];
    }
    const char *e = ty_loops[f] + index * (arity + 1);
    for (int i = 0; i <= arity; i++) {
        int d = decode(e[i]);
        if (d < 0)
            return 0;
        loop[i] = (fusor_dtype)d;
    }
    return 1;
}

int ty_result_type(int a, int b, fusor_dtype *out) {
    if (!valid_kind(a) || !valid_kind(b))
        return 0;
    int d = decode(ty_result[a * TY_NUM_KINDS + b]);
    if (d < 0)
        return 0;
    *out = (fusor_dtype)d;
    return 1;
}

int ty_result_type3(int a, int b, int c, fusor_dtype *out) {
    if (!valid_kind(a) || !valid_kind(b) || !valid_kind(c))
        return 0;
    int d = decode(ty_result3[(a * TY_NUM_KINDS + b) * TY_NUM_KINDS + c]);
    if (d < 0)
        return 0;
    *out = (fusor_dtype)d;
    return 1;
}

int ty_can_cast_safe(fusor_dtype from, fusor_dtype to) {
    if ((unsigned)from >= FUSOR_NUM_DTYPES || (unsigned)to >= FUSOR_NUM_DTYPES)
        return 0;
    return ty_safe[from * FUSOR_NUM_DTYPES + to] == '1';
}

fusor_dtype ty_reduce_dtype(ty_reduction r, fusor_dtype operand) {
    static const char *const tables[] = {ty_reduce_sum, ty_reduce_prod, ty_reduce_min,
                                         ty_reduce_max, ty_reduce_mean};
    if ((unsigned)operand >= FUSOR_NUM_DTYPES || (unsigned)r > TY_MEAN)
        return operand;
    return (fusor_dtype)decode(tables[r][operand]);
}
