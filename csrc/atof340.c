/*
** Models of sqlite3AtoF() from src/util.c of SQLite 3.40.1 (UTF-8 path only),
** used by src/dump/real.rs to decide whether the sqlite3 3.40 CLI reads a
** decimal literal back to the exact double we mean, on EVERY platform.
**
** 3.40 is not correctly rounding: it scales the integer significand by a
** power of ten in LONGDOUBLE_TYPE (sqliteInt.h: `long double` unless the
** build overrides it; there is no sizeof(LONGDOUBLE_TYPE) test and no other
** algorithm in 3.40 -- those came with 3.43's rewrite) and then rounds to
** double.  So the result depends on what `long double` is where the sqlite3
** binary was built:
**
**   ld80     x87 80-bit extended, 64-bit significand: Linux/BSD/MinGW x86-64
**            (e.g. Debian's sqlite3 3.40.1).
**   f128     IEEE binary128, 113-bit significand: aarch64 Linux (Debian/
**            Ubuntu arm64, Raspberry Pi OS 64-bit), also riscv64 and s390x.
**            (ppc64le's IBM double-double long double is not modelled.)
**   f64      long double == double, gcc/clang: macOS (arm64), 32-bit ARM,
**            builds with -DLONGDOUBLE_TYPE=double.
**   f64msvc  long double == double, MSVC (sqlite.org's Windows binaries):
**            sqlite3Pow10() uses a table of literals 1e1,1e2,...,1e256
**            (correctly rounded doubles) instead of repeated squaring, and
**            fl(fl(1e32)^2) != 1e64, fl(1e64^2) != 1e128, fl(1e128^2) != 1e256,
**            so it is a model of its own.
**
** The parsing half (sqlgit_atof340_parse) is type-independent and copied
** from 3.40.1 unchanged apart from dropping UTF-16 and the return code; the
** floating-point half is in atof340_calc.h, included once per model.
** Do NOT "fix" anything here: the inaccuracy is the point.
**
** ld80 and f128 need a C type with exactly that format on the build host:
** x86-64 has both (long double, and gcc/clang's __float128, whose + - * /
** and conversions are correctly rounded soft-float in libgcc/compiler-rt);
** aarch64 Linux has binary128 as long double but no 80-bit type.  Where a
** type is missing, sqlgit_atof340_native[] says so and src/dump/real.rs
** falls back to treating that model as "not exact" (so it writes ieee754(),
** which is still exact everywhere, just not short).
*/
#include <float.h>
#include <math.h>
#include <stdint.h>

typedef int64_t i64;
#define LARGEST_INT64 (0xffffffff|(((i64)0x7fffffff)<<32))
#define sqlite3Isdigit(x) ((x)>='0' && (x)<='9')
#define sqlite3Isspace(x) ((x)==' '||((x)>='\t' && (x)<='\r'))

/*
** The parsing half of 3.40.1's sqlite3AtoF(), through the "reduce exponent"
** loop.  Returns 0 and stores the (signed zero) result in *pZero if the
** significand is zero; otherwise returns 1 and stores s (signed), e (>=0)
** and esign for ATOF_CALC.
*/
int sqlgit_atof340_parse(const char *z, int length, i64 *pS, int *pE,
                         int *pEsign, double *pZero){
  int incr = 1;
  const char *zEnd = z + length;
  int sign = 1;    /* sign of significand */
  i64 s = 0;       /* significand */
  int d = 0;       /* adjust exponent for shifting decimal point */
  int esign = 1;   /* sign of exponent */
  int e = 0;       /* exponent */

  *pZero = 0.0;
  if( length==0 ) return 0;
  while( z<zEnd && sqlite3Isspace(*z) ) z+=incr;
  if( z>=zEnd ) return 0;
  if( *z=='-' ){
    sign = -1;
    z+=incr;
  }else if( *z=='+' ){
    z+=incr;
  }
  /* copy max significant digits to significand */
  while( z<zEnd && sqlite3Isdigit(*z) ){
    s = s*10 + (*z - '0');
    z+=incr;
    if( s>=((LARGEST_INT64-9)/10) ){
      while( z<zEnd && sqlite3Isdigit(*z) ){ z+=incr; d++; }
    }
  }
  if( z>=zEnd ) goto do_atof_calc;
  if( *z=='.' ){
    z+=incr;
    while( z<zEnd && sqlite3Isdigit(*z) ){
      if( s<((LARGEST_INT64-9)/10) ){
        s = s*10 + (*z - '0');
        d--;
      }
      z+=incr;
    }
  }
  if( z>=zEnd ) goto do_atof_calc;
  if( *z=='e' || *z=='E' ){
    z+=incr;
    if( z>=zEnd ) goto do_atof_calc;
    if( *z=='-' ){
      esign = -1;
      z+=incr;
    }else if( *z=='+' ){
      z+=incr;
    }
    while( z<zEnd && sqlite3Isdigit(*z) ){
      e = e<10000 ? (e*10 + (*z - '0')) : 10000;
      z+=incr;
    }
  }

do_atof_calc:
  e = (e*esign) + d;
  if( e<0 ) {
    esign = -1;
    e *= -1;
  } else {
    esign = 1;
  }
  if( s==0 ) {
    *pZero = sign<0 ? -(double)0 : (double)0;
    return 0;
  }
  /* Attempt to reduce exponent. */
  while( e>0 ){
    if( esign>0 ){
      if( s>=(LARGEST_INT64/10) ) break;
      s *= 10;
    }else{
      if( s%10!=0 ) break;
      s /= 10;
    }
    e--;
  }
  *pS = sign<0 ? -s : s;
  *pE = e;
  *pEsign = esign;
  return 1;
}

/* sqlite3Pow10() of 3.40.1, gcc/clang branch (repeated squaring), for T. */
#define DEFINE_POW10_SQUARING(NAME, T) \
  static T NAME(int E){                \
    T x = 10.0;                        \
    T r = 1.0;                         \
    while(1){                          \
      if( E & 1 ) r *= x;              \
      E >>= 1;                         \
      if( E==0 ) break;                \
      x *= x;                          \
    }                                  \
    return r;                          \
  }

/* sqlite3Pow10() of 3.40.1, _MSC_VER branch (where long double is double). */
static double pow10_msvc(int E){
  static const double x[] = {
    1.0e+001,
    1.0e+002,
    1.0e+004,
    1.0e+008,
    1.0e+016,
    1.0e+032,
    1.0e+064,
    1.0e+128,
    1.0e+256
  };
  double r = 1.0;
  int i;
  for(i=0; E!=0; i++, E >>=1){
    if( E & 1 ) r *= x[i];
  }
  return r;
}

/* ld80: x87 80-bit extended (64-bit significand, 15-bit exponent). */
#if LDBL_MANT_DIG==64 && LDBL_MAX_EXP==16384
# define HAVE_LD80 1
typedef long double ld80_t;
#else
# define HAVE_LD80 0
typedef double ld80_t;             /* placeholder, never used for answers */
#endif
/* f128: IEEE binary128 (113-bit significand). */
#if LDBL_MANT_DIG==113
# define HAVE_F128 1
typedef long double f128_t;
#elif defined(__SIZEOF_FLOAT128__)
# define HAVE_F128 1
typedef __float128 f128_t;
#else
# define HAVE_F128 0
typedef double f128_t;             /* placeholder, never used for answers */
#endif

DEFINE_POW10_SQUARING(pow10_ld80, ld80_t)
DEFINE_POW10_SQUARING(pow10_f128, f128_t)
DEFINE_POW10_SQUARING(pow10_f64, double)

/*
** sqlite3Pow10(E) is only ever called with 0 <= E <= 307, and its result is a
** plain value of the model's type, so each model looks it up in a table
** filled once (sqlgit_atof340_init) by the very loop above: same values, but
** no repeated squaring per literal (which costs ~18 soft-float multiplies for
** f128).  Storing a value of type T in a T array and loading it is exact.
*/
#define POW10_N 308
static ld80_t tab_ld80[POW10_N];
static f128_t tab_f128[POW10_N];
static double tab_f64[POW10_N];
static double tab_f64msvc[POW10_N];

/* Must be called once before any sqlgit_atof340_calc_* (src/dump/real.rs
** does so under a std::sync::Once). */
void sqlgit_atof340_init(void){
  int i;
  for(i=0; i<POW10_N; i++){
    tab_ld80[i] = pow10_ld80(i);
    tab_f128[i] = pow10_f128(i);
    tab_f64[i] = pow10_f64(i);
    tab_f64msvc[i] = pow10_msvc(i);
  }
}
#define POW10_LD80(E) (tab_ld80[E])
#define POW10_F128(E) (tab_f128[E])
#define POW10_F64(E) (tab_f64[E])
#define POW10_F64MSVC(E) (tab_f64msvc[E])

#define LONGDOUBLE_TYPE ld80_t
#define ATOF_CALC sqlgit_atof340_calc_ld80
#define ATOF_POW10 POW10_LD80
#include "atof340_calc.h"
#undef LONGDOUBLE_TYPE
#undef ATOF_CALC
#undef ATOF_POW10

#define LONGDOUBLE_TYPE f128_t
#define ATOF_CALC sqlgit_atof340_calc_f128
#define ATOF_POW10 POW10_F128
#include "atof340_calc.h"
#undef LONGDOUBLE_TYPE
#undef ATOF_CALC
#undef ATOF_POW10

#define LONGDOUBLE_TYPE double
#define ATOF_CALC sqlgit_atof340_calc_f64
#define ATOF_POW10 POW10_F64
#include "atof340_calc.h"
#undef ATOF_CALC
#undef ATOF_POW10

#define ATOF_CALC sqlgit_atof340_calc_f64msvc
#define ATOF_POW10 POW10_F64MSVC
#include "atof340_calc.h"
#undef LONGDOUBLE_TYPE
#undef ATOF_CALC
#undef ATOF_POW10

/*
** Not part of 3.40: a cheap sufficient test that the f128 model reads the
** literal (s, e, esign) as the correctly rounded double, so that the caller
** can skip the soft-float computation.  For e<=27 both 10^e and s are exact
** in the x87 format and in binary128 (5^27 < 2^63, and sqlite3Pow10 squares
** no further than 1e16), so ld80 computes y = round64(x) and f128 computes
** round113(x) of the exact value x.  If y lies 3 or more ulp64 away from
** every midpoint between adjacent doubles (its 11 bits below a double's 53
** are not within 2 of binary 10000000000; x is then never subnormal or huge),
** x lies at least 2.5 ulp64 away, so does round113(x) (within 2^-49 ulp64 of
** x), and rounding that to double gives round53(x).  Returns 1 then, else 0.
*/
int sqlgit_atof340_f128_is_correct(i64 s, int e, int esign){
#if HAVE_LD80 && HAVE_F128 && (defined(__x86_64__) || defined(__i386__))
  long double y;
  union { long double ld; uint64_t w[2]; } u;
  unsigned low;
  if( e>27 ) return 0;
  y = esign<0 ? s / tab_ld80[e] : s * tab_ld80[e];
  u.w[0] = u.w[1] = 0;
  u.ld = y;
  low = (unsigned)(u.w[0] & 0x7ff);   /* x87: explicit 64-bit significand first */
  return low+2 < 0x400 || low > 0x402;
#else
  (void)s; (void)e; (void)esign;
  return 0;
#endif
}

/*
** Not part of 3.40: whether the exact value of the literal (s, e, esign) is a
** normal double lying more than `margin` x87 ulps away from every midpoint
** between two adjacent doubles (see src/dump/real/newer.rs, which needs it
** for the parsers of 3.43 and later).  Decided on 3.40's x87 result
** y = s * 10^e (or s / 10^e): 10^e is exact for e <= 27, so y is the exact
** value rounded once; above, sqlite3Pow10's squares are rounded too, which the
** caller allows for with a larger margin.  0 where this build has no x87
** type, for e > 307 (3.40 then works in double), and near the ends of the
** double range.
*/
int sqlgit_atof_clear_of_midpoint(i64 s, int e, int esign, int margin){
#if HAVE_LD80 && (defined(__x86_64__) || defined(__i386__))
  long double y;
  union { long double ld; uint64_t w[2]; } u;
  unsigned low;
  int exponent;
  if( e>307 ) return 0;
  y = esign<0 ? s / tab_ld80[e] : s * tab_ld80[e];
  if( y<0 ) y = -y;
  u.w[0] = u.w[1] = 0;
  u.ld = y;
  exponent = (int)(u.w[1] & 0x7fff) - 16383;
  if( exponent < -1020 || exponent > 1022 ) return 0;
  low = (unsigned)(u.w[0] & 0x7ff);   /* the 11 bits below a double's 53 */
  return low+(unsigned)margin < 0x400 || low > 0x400+(unsigned)margin;
#else
  (void)s; (void)e; (void)esign; (void)margin;
  return 0;
#endif
}

/* Whether ld80, f128, f64, f64msvc (in that order) are computed exactly as
** on their platform by this build. */
const int sqlgit_atof340_native[4] = { HAVE_LD80, HAVE_F128, 1, 1 };
