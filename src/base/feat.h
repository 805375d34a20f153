/* feat.h - feature-test macros; included first by every .c file (redis fmacros.h idea).
 * Keeping them in one place means no translation unit sees a different libc API. */
#ifndef BERTH_FEAT_H
#define BERTH_FEAT_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif
#endif
