/*
 * ir.h — fusor's typed SSA IR: the contract between the front end and every back end.
 *
 * A kernel is a DAG of nodes stored in topological order (operands always have smaller
 * indices than their users).  Every node has one dtype and is either VARYING (one value
 * per element of the kernel's broadcast domain) or UNIFORM (one value for the whole
 * launch: scalar parameters, constants, reductions and arithmetic on them).  The checker
 * inserts every conversion explicitly, so an operation's operands already have the dtype
 * the operation computes in (see the table below); back ends never promote.
 *
 * The reference interpreter (interp.c, with scalar.c for one element) is the executable
 * definition of these semantics; code generators must agree with it.
 */
#ifndef FUSOR_IR_H
#define FUSOR_IR_H

#include <stdint.h>

#include "arena.h"
#include "fusor.h"

/*
 * The operations.  X(NAME, arity, "text name").
 *
 * Operand dtypes: unless noted, operands have the node's dtype.
 * Integer arithmetic wraps (two's complement).  Floats are IEEE-754 (no fast-math).
 *
 *  CONST        imm holds the value (canonical form, see ir_value).
 *  INPUT        parameter number imm.i: an element of an input array (VARYING) or a scalar
 *               parameter (UNIFORM).  For an array parameter with declared dimensions
 *               (ir_param_ndims > 0) the node may carry an offset vector off[0..ndims):
 *               element (i0 + off[0], i1 + off[1], ...) of the parameter, where (i0, ...)
 *               is the element's multi-index in the domain (the parameter's rank equals
 *               the domain's, and its shape the domain's full shape).  An index outside
 *               [0, n) of dimension d is mapped by the parameter's boundary mode:
 *                 CLAMP     to 0 or n-1;
 *                 WRAP      modulo n (periodic);
 *                 ZERO      the load gives 0 (canonical zero of the dtype);
 *                 MIRROR    reflected without repeating the edge: -1 -> 1, n -> n-2
 *                           (NumPy's pad mode 'reflect'; the offset must be < n);
 *                 INTERIOR  never happens: the kernel's domain is the interior sub-box,
 *                           where every neighbour of every INTERIOR parameter exists.
 *               With an INTERIOR parameter the kernel runs only over that sub-box (the
 *               union of all such parameters' halos is cut from each side): array outputs
 *               outside it are left untouched, reductions and COUNT cover only it.  A node
 *               whose offsets are all zero is a plain load (the checker canonicalises it).
 *  COUNT        the number of elements of the broadcast domain, i64, UNIFORM.
 *  CAST         a has any dtype.  ->bool: a != 0 (NaN is true).  bool->: 0 or 1.
 *               int->int: wrap.  int->float, float->float: round to nearest.
 *               float->int: truncate toward zero, saturating at the type's limits, NaN->0.
 *  NEG          -a.  POS does not exist (the checker drops unary +).
 *  NOT          bool: logical not.  integers: bitwise not.
 *  ABS          integers: wraps (abs(MIN) == MIN).  floats: fabs.
 *  SIGN         integers: -1, 0, 1.  floats: -1.0, +1.0, NaN for NaN, +0.0 for +-0 (NumPy).
 *  SQRT..ATANH  floats only; the C library function of that precision (sinf for f32).
 *  SQUARE       a*a (wraps for integers).
 *  RECIPROCAL   1/a.  Integers: 1/a truncated, 0 when a == 0.
 *  FLOOR CEIL TRUNC RINT  floats (RINT rounds half to even); integers: a itself.
 *  ISNAN ISINF ISFINITE   result bool; a is float (integers are folded by the checker).
 *  ADD SUB MUL  a op b.  Bools never reach these (the checker rewrites + and * of bools
 *               to OR and AND as NumPy does).
 *  DIV          true division, floats only.
 *  FLOORDIV     integers: floor(a/b); b == 0 gives 0; MIN // -1 gives MIN.
 *               floats: NumPy's npy_divmod quotient (b == 0 gives a/b).
 *  MOD          integers: the remainder with the divisor's sign; b == 0 gives 0.
 *               floats: NumPy's npy_divmod remainder (sign of b; b == 0 gives NaN).
 *  FMOD         C fmod for floats (sign of a); integers: C % truncating, b == 0 gives 0.
 *  POW          floats: C pow.  integers: exact power by squaring, wrapping; b == 0 gives
 *               1; a negative b gives the truncated true value (1 for a == 1, +-1 for
 *               a == -1, else 0) — a negative literal exponent is a language error.
 *  AND OR XOR   bool: logical.  integers: bitwise.
 *  SHL SHR      integers; b is read as unsigned: b >= bit width (or b < 0) gives 0, or -1
 *               for SHR of a negative signed a.  SHR is arithmetic for signed types.
 *  LT LE GT GE EQ NE   result bool; operands share the dtype given by the node's `adtype`
 *               field.  IEEE: any comparison with NaN is false except NE.
 *  ATAN2 HYPOT COPYSIGN  floats; C library functions.
 *  MINIMUM MAXIMUM       NaN-propagating (NaN if either is NaN).
 *  FMIN FMAX             NaN-ignoring (C fmin/fmax).  For all four, operands that compare
 *               equal (+0 and -0) give b, as NumPy's maximum does: MAXIMUM is
 *               isnan(a) || a > b ? a : b, FMAX is isnan(b) || a > b ? a : b.  f16 ties
 *               give a instead, as NumPy's float16 loops do (a <= b ? a : b): an f16
 *               MINIMUM(a, b) is the rule above applied to (b, a), likewise the others.
 *  f16          Every op on f16 is the f32 op on the operands widened to f32, with the
 *               result rounded to half (NumPy's float16 loops); reductions of f16
 *               accumulate in f32 and round once at the end.
 *  WHERE        a is bool, b and c have the node's dtype: a ? b : c.
 *  SUM PROD     UNIFORM reductions of a VARYING a over the whole domain, computed in the
 *               node's dtype (the checker casts a to it: i64 for small ints and bool, as
 *               NumPy's sum).  Empty domain: 0 and 1.  Float sums are pairwise (or blocked)
 *               as accurate as NumPy's.
 *  MIN MAX      NaN-propagating.  An empty domain is an error (FUSOR_ERROR_VALUE).
 *  ANY ALL      a is bool.  Empty domain: false and true.
 *
 * Axis reductions.  A reduction node whose shape is VARYING reduces its operand along one
 * axis only (`sum(x, axis=1)`), giving an array: imm.i is the axis, counted from the end
 * when negative (-1: the last) and from the start when not, and off[0] is 1 to keep the
 * reduced axis with length 1 (keepdims).  Its identity, combination and empty-axis rules
 * are the whole-domain reduction's.  A COUNT node with imm.i = r + 1 > 0 is the length of
 * the axis that axis reduction r reduces (UNIFORM i64: `mean(x, axis=k)` divides by it).
 * A kernel with axis reductions has no single domain: each VARYING node has its own shape,
 * NumPy's broadcast of its operands' shapes (right-aligned), and an axis reduction's shape
 * is its operand's without the axis.  Such a kernel has no whole-domain reductions and no
 * stencil loads (the checker refuses them); back ends never see it whole: ir_stage_build
 * splits it into ordinary kernels (stage.h), and the interpreter runs it directly.
 */
#define IR_OPS(X)                                                                          \
    X(CONST, 0, "const")                                                                   \
    X(INPUT, 0, "input")                                                                   \
    X(COUNT, 0, "count")                                                                   \
    X(CAST, 1, "cast")                                                                     \
    X(NEG, 1, "neg")                                                                       \
    X(NOT, 1, "not")                                                                       \
    X(ABS, 1, "abs")                                                                       \
    X(SIGN, 1, "sign")                                                                     \
    X(SQRT, 1, "sqrt")                                                                     \
    X(CBRT, 1, "cbrt")                                                                     \
    X(SQUARE, 1, "square")                                                                 \
    X(RECIPROCAL, 1, "reciprocal")                                                         \
    X(EXP, 1, "exp")                                                                       \
    X(EXP2, 1, "exp2")                                                                     \
    X(EXPM1, 1, "expm1")                                                                   \
    X(LOG, 1, "log")                                                                       \
    X(LOG2, 1, "log2")                                                                     \
    X(LOG10, 1, "log10")                                                                   \
    X(LOG1P, 1, "log1p")                                                                   \
    X(SIN, 1, "sin")                                                                       \
    X(COS, 1, "cos")                                                                       \
    X(TAN, 1, "tan")                                                                       \
    X(ASIN, 1, "arcsin")                                                                   \
    X(ACOS, 1, "arccos")                                                                   \
    X(ATAN, 1, "arctan")                                                                   \
    X(SINH, 1, "sinh")                                                                     \
    X(COSH, 1, "cosh")                                                                     \
    X(TANH, 1, "tanh")                                                                     \
    X(ASINH, 1, "arcsinh")                                                                 \
    X(ACOSH, 1, "arccosh")                                                                 \
    X(ATANH, 1, "arctanh")                                                                 \
    X(FLOOR, 1, "floor")                                                                   \
    X(CEIL, 1, "ceil")                                                                     \
    X(TRUNC, 1, "trunc")                                                                   \
    X(RINT, 1, "rint")                                                                     \
    X(ISNAN, 1, "isnan")                                                                   \
    X(ISINF, 1, "isinf")                                                                   \
    X(ISFINITE, 1, "isfinite")                                                             \
    X(ADD, 2, "add")                                                                       \
    X(SUB, 2, "sub")                                                                       \
    X(MUL, 2, "mul")                                                                       \
    X(DIV, 2, "div")                                                                       \
    X(FLOORDIV, 2, "floordiv")                                                             \
    X(MOD, 2, "mod")                                                                       \
    X(FMOD, 2, "fmod")                                                                     \
    X(POW, 2, "pow")                                                                       \
    X(AND, 2, "and")                                                                       \
    X(OR, 2, "or")                                                                         \
    X(XOR, 2, "xor")                                                                       \
    X(SHL, 2, "shl")                                                                       \
    X(SHR, 2, "shr")                                                                       \
    X(LT, 2, "lt")                                                                         \
    X(LE, 2, "le")                                                                         \
    X(GT, 2, "gt")                                                                         \
    X(GE, 2, "ge")                                                                         \
    X(EQ, 2, "eq")                                                                         \
    X(NE, 2, "ne")                                                                         \
    X(ATAN2, 2, "arctan2")                                                                 \
    X(HYPOT, 2, "hypot")                                                                   \
    X(COPYSIGN, 2, "copysign")                                                             \
    X(MINIMUM, 2, "minimum")                                                               \
    X(MAXIMUM, 2, "maximum")                                                               \
    X(FMIN, 2, "fmin")                                                                     \
    X(FMAX, 2, "fmax")                                                                     \
    X(WHERE, 3, "where")                                                                   \
    X(SUM, 1, "sum")                                                                       \
    X(PROD, 1, "prod")                                                                     \
    X(MIN, 1, "min")                                                                       \
    X(MAX, 1, "max")                                                                       \
    X(ANY, 1, "any")                                                                       \
    X(ALL, 1, "all")

typedef enum ir_op {
#define IR_ENUM(name, arity, text) IR_##name,
    IR_OPS(IR_ENUM)
#undef IR_ENUM
        IR_NUM_OPS
} ir_op;

int ir_op_arity(ir_op op);
const char *ir_op_name(ir_op op);
int ir_op_is_reduction(ir_op op);  /* SUM PROD MIN MAX ANY ALL */
int ir_op_is_comparison(ir_op op); /* LT LE GT GE EQ NE */

/*
 * One scalar value in canonical form, used for constants, scalar arguments, reduction
 * results and scalar outputs alike: bool and signed integers in .i (sign-extended),
 * unsigned integers in .u, f32 and f64 in .f (an f32 value is a double that is exactly
 * representable as a float).
 */
typedef union ir_value {
    int64_t i;
    uint64_t u;
    double f;
} ir_value;

typedef enum ir_shape { IR_UNIFORM = 0, IR_VARYING = 1 } ir_shape;

typedef struct ir_node {
    uint8_t op;     /* ir_op */
    uint8_t dtype;  /* fusor_dtype of the result */
    uint8_t adtype; /* dtype of the operands (differs from dtype for CAST and comparisons) */
    uint8_t shape;  /* ir_shape */
    int32_t a, b, c; /* operand node indices, -1 when unused */
    ir_value imm;    /* CONST: the value; INPUT: imm.i is the parameter index */
    int32_t slot;    /* reductions: the launch slot holding the result (set by the planner) */
    int32_t pass;    /* reductions: the pass that computes them (set by the planner) */
    int8_t off[FUSOR_MAX_DIMS]; /* INPUT of an array: the stencil offset (all 0: plain) */
} ir_node;

/* Boundary handling of an array parameter read with offsets (see INPUT above). */
typedef enum ir_boundary {
    IR_BOUND_NONE = 0,
    IR_BOUND_CLAMP,
    IR_BOUND_WRAP,
    IR_BOUND_ZERO,
    IR_BOUND_MIRROR,
    IR_BOUND_INTERIOR
} ir_boundary;
const char *ir_boundary_name(ir_boundary b);

typedef struct ir_param {
    const char *name;
    fusor_dtype dtype;
    int is_array;
} ir_param;

/* What an array parameter declares for stencils (a side table of ir_kernel). */
typedef struct ir_dims {
    int ndims;          /* declared dimensions (`f64[n, m]`), 0 when not declared */
    int boundary;       /* ir_boundary */
    const char **names; /* [ndims] the dimension names */
} ir_dims;

typedef struct ir_output {
    const char *name;
    fusor_dtype dtype;
    int is_array;
    int32_t node; /* the node whose value is stored; has the output's dtype */
} ir_output;

typedef struct ir_kernel {
    const char *name;
    int nparams, noutputs;
    ir_param *params;
    ir_output *outputs;
    ir_dims *dims; /* [nparams], or NULL when no parameter declares its dimensions */
    /* [noutputs], or NULL: an output's declared (gufunc) dimensions `y: f64[n]`, each name
     * declared by some parameter; the boundary is always NONE. */
    ir_dims *out_dims;
    int nnodes, cap;
    ir_node *nodes;
    arena *arena; /* owns everything above */
    void *cse;    /* the builder's hash table while the kernel is being built */
    /* Nonzero for an AXIS stage's kernel (stage.h): its one reduction is computed once
     * per result element over the reduced axis, so GPU code generation gives it the axis
     * kernels (codegen/gpu.h) instead of the pass kernels. */
    int axis_stage;
} ir_kernel;

/* --- building (used by the checker; nodes are hash-consed, so equal subexpressions
 * share one node) --- */
ir_kernel *ir_kernel_new(arena *a, const char *name);
/* Appends (or finds) a node; returns its index or -1 when out of memory.  shape is
 * derived from the operands (INPUT and CONST nodes take the shape argument). */
int32_t ir_add(ir_kernel *k, ir_op op, fusor_dtype dtype, fusor_dtype adtype, ir_shape shape,
               int32_t a, int32_t b, int32_t c, ir_value imm);
int32_t ir_const(ir_kernel *k, fusor_dtype dtype, ir_value v);
/* A VARYING load of array parameter `param` at offset off[0..k->params[param].ndims). */
int32_t ir_input_at(ir_kernel *k, int param, fusor_dtype dtype, const int8_t *off);

/* Declared rank of output j (0 without k->out_dims). */
int ir_output_ndims(const ir_kernel *k, int j);
/* Declared rank and boundary of parameter p (0 and IR_BOUND_NONE without k->dims). */
int ir_param_ndims(const ir_kernel *k, int p);
ir_boundary ir_param_boundary(const ir_kernel *k, int p);

/* Stencil loads: INPUT nodes with a nonzero offset.  ir_stencil_loads fills `nodes` (when
 * not NULL) with their indices in node order and returns their count.  Back ends address
 * stencil load v as an extra array, index nparams + noutputs + v, after the outputs. */
int ir_is_stencil_load(const ir_kernel *k, const ir_node *n);
int ir_stencil_loads(const ir_kernel *k, int32_t *nodes);
/* Index i of a dimension of size n > 0 mapped into [0, n) by boundary b (see INPUT above);
 * -1 for ZERO (and NONE, INTERIOR) when i is outside. */
int64_t ir_boundary_index(ir_boundary b, int64_t i, int64_t n);
/* Nonzero when some parameter has boundary INTERIOR; then lo[d], hi[d] receive the halo
 * cut from the start and the end of domain dimension d (d < ndim of those parameters). */
int ir_interior_halo(const ir_kernel *k, int64_t lo[FUSOR_MAX_DIMS], int64_t hi[FUSOR_MAX_DIMS]);
/* An axis reduction (see "Axis reductions" above) of `a` along `axis` (negative: from the
 * end), keeping the axis with length 1 when keepdims. */
int32_t ir_axis_reduce(ir_kernel *k, ir_op op, fusor_dtype dtype, int32_t a, int axis,
                       int keepdims);
int ir_is_axis_reduction(const ir_node *n);
/* A MIN or MAX reduction of a float dtype (its result orders zeros and NaNs as NumPy's
 * sequential fold: back ends carry it keyed, with a NaN flag and a zero tag). */
int ir_is_float_minmax(const ir_node *n);
/* Nonzero when the kernel has axis reductions (and so needs stage.h to run compiled). */
int ir_has_axis_reductions(const ir_kernel *k);

/* Releases the builder's table; call when the kernel is complete. */
void ir_finish(ir_kernel *k);

/* Deterministic text form of the kernel (and its plan if given); the cache key is built
 * from ir_key().  Returned strings are allocated with fu_malloc. */
struct ir_plan;
char *ir_print(const ir_kernel *k, const struct ir_plan *plan);
/* A byte string that identifies the kernel's semantics exactly (names excluded, except
 * those of parameters and outputs).  *len receives its length. */
unsigned char *ir_key(const ir_kernel *k, size_t *len);

/*
 * The plan: the fewest passes over the domain.  Reductions are computed in the earliest
 * pass their operand allows; element-wise work that uses a reduction's result runs in a
 * later pass.  Every array output is stored in the last pass, so an output that is the
 * same array as an input is written only after every pass has read the input.
 *
 * Launch slots (ir_value each): [0, nparams) scalar parameters by parameter index (array
 * parameters leave theirs unused), nparams holds COUNT, then one slot per reduction.
 * Array pointers and strides are indexed [0, nparams) for parameters and
 * nparams + j for output j.
 */
typedef struct ir_pass {
    int nreductions;
    int32_t *reductions; /* node indices; accumulator r of the pass is reductions[r] */
    int nstores;
    int32_t *stores; /* output indices of the array outputs written in this pass */
} ir_pass;

typedef struct ir_plan {
    int npasses;
    ir_pass *passes;
    int nslots;   /* nparams + 1 + number of reductions */
    int count_slot;
    int has_scalar_outputs;
} ir_plan;

/* Plans `k` (and sets the slot and pass of its reduction nodes). */
fusor_status ir_plan_build(ir_kernel *k, ir_plan **out);

#endif
