/*
 * domain.h — arguments as the back ends see them at launch.
 *
 * The launcher (scheduler/) broadcasts every array argument to the kernel's domain
 * shape and hands back ends one view per array: a pointer to element [0,...,0] and byte
 * strides over the domain (0 along broadcast dimensions).  Back ends never broadcast.
 */
#ifndef FUSOR_DOMAIN_H
#define FUSOR_DOMAIN_H

#include <stdint.h>

#include "ir.h"

typedef struct ir_domain {
    int ndim;                       /* 0 for a scalar domain */
    int64_t shape[FUSOR_MAX_DIMS];  /* C order: the last dimension is the innermost */
    int64_t size;                   /* product of shape */
    int narrays;                    /* k->nparams + k->noutputs */
    char **base;                    /* per index: element [0,...,0]; NULL for scalars */
    int64_t (*strides)[FUSOR_MAX_DIMS]; /* per index: byte strides over the domain */
} ir_domain;

#endif
