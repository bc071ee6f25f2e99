/*
** Models of sqlite3AtoF() from src/util.c of SQLite 3.43 to 3.51 (UTF-8 path
** only), used by src/dump/real.rs beside csrc/atof340.c: a dump must restore
** exactly through every sqlite3 CLI from 3.40 on, and 3.43 rewrote the
** floating-point half of the decimal parser (3.53 rewrote it again, to a
** correctly rounding algorithm that needs no model):
**
**   3.43-3.46  where `long double` is wider than double and works (x86-64
**              Linux/BSD: x87 80-bit; aarch64 Linux: binary128), the
**              significand is multiplied by 1e100L, 1e10L, 1e1L (or 1e-100L,
**              1e-10L, 1e-1L) one factor at a time, each product rounded,
**              then the result rounded to double;
**              elsewhere (macOS arm64, Windows), and everywhere from 3.47 to
**              3.51, the same steps in double-double arithmetic (Dekker).
**
** Only the x87 loop (Debian trixie's and Ubuntu 24.04's sqlite3) is computed
** here, exactly; its many roundings make it the least accurate.  The
** binary128 loop and the double-double steps are off the exact value by far
** less than a 64-bit ulp (however the C compiler contracts them into fused
** multiply-adds), so src/dump/real.rs accepts a literal for them only when the
** exact value lies well away from a rounding midpoint between two doubles,
** which sqlgit_atof_clear_of_midpoint() (csrc/atof340.c) tells from 3.40's x87
** result.
** Do NOT "fix" anything: the inaccuracy is the point.
*/
#include <float.h>
#include <stdint.h>

typedef uint64_t u64;
typedef int64_t i64;
#define LARGEST_UINT64 (0xffffffff|(((u64)0xffffffff)<<32))
#define sqlite3Isdigit(x) ((x)>='0' && (x)<='9')
#define sqlite3Isspace(x) ((x)==' '||((x)>='\t' && (x)<='\r'))

/*
** The parsing half of 3.44.0's sqlite3AtoF() (3.43-3.46; `late` non-zero:
** 3.47-3.51, whose exponent-adjusting loop stops 0x7ff lower), through the
** "adjust the exponent" loops.  Returns 0 for a zero significand, else 1 with
** the unsigned significand in *pS and the signed exponent in *pE.
*/
int sqlgit_atof343_parse(const char *z, int length, int late, u64 *pS, int *pE){
  const char *zEnd = z + length;
  u64 s = 0;
  int d = 0;
  int esign = 1;
  int e = 0;
  u64 bound = late ? ((LARGEST_UINT64-0x7ff)/10) : (LARGEST_UINT64/10);

  if( length==0 ) return 0;
  while( z<zEnd && sqlite3Isspace(*z) ) z++;
  if( z>=zEnd ) return 0;
  if( *z=='-' || *z=='+' ) z++;
  while( z<zEnd && sqlite3Isdigit(*z) ){
    s = s*10 + (*z - '0');
    z++;
    if( s>=((LARGEST_UINT64-9)/10) ){
      while( z<zEnd && sqlite3Isdigit(*z) ){ z++; d++; }
    }
  }
  if( z>=zEnd ) goto do_atof_calc;
  if( *z=='.' ){
    z++;
    while( z<zEnd && sqlite3Isdigit(*z) ){
      if( s<((LARGEST_UINT64-9)/10) ){
        s = s*10 + (*z - '0');
        d--;
      }
      z++;
    }
  }
  if( z>=zEnd ) goto do_atof_calc;
  if( *z=='e' || *z=='E' ){
    z++;
    if( z>=zEnd ) goto do_atof_calc;
    if( *z=='-' ){
      esign = -1;
      z++;
    }else if( *z=='+' ){
      z++;
    }
    while( z<zEnd && sqlite3Isdigit(*z) ){
      e = e<10000 ? (e*10 + (*z - '0')) : 10000;
      z++;
    }
  }

do_atof_calc:
  if( s==0 ) return 0;
  e = (e*esign) + d;
  while( e>0 && s<bound ){
    s *= 10;
    e--;
  }
  while( e<0 && (s%10)==0 ){
    s /= 10;
    e++;
  }
  *pS = s;
  *pE = e;
  return 1;
}

#if LDBL_MANT_DIG==64 && LDBL_MAX_EXP==16384
# define HAVE_LD80 1
#else
# define HAVE_LD80 0
#endif

/*
** The floating-point half of 3.43-3.46 where sqlite3Config.bUseLongDouble is
** set and `long double` is x87 80-bit, on (s, e) from sqlgit_atof343_parse
** (the sign is applied after, exactly).  0.0 where this build has no x87 type
** (sqlgit_atof343_native says so).
*/
double sqlgit_atof343_calc_ld80(u64 s, int e){
#if HAVE_LD80
  long double r;
  if( e==0 ) return (double)s;
  r = (long double)s;
  if( e>0 ){
    while( e>=100  ){ e-=100; r *= 1.0e+100L; }
    while( e>=10   ){ e-=10;  r *= 1.0e+10L;  }
    while( e>=1    ){ e-=1;   r *= 1.0e+01L;  }
  }else{
    while( e<=-100 ){ e+=100; r *= 1.0e-100L; }
    while( e<=-10  ){ e+=10;  r *= 1.0e-10L;  }
    while( e<=-1   ){ e+=1;   r *= 1.0e-01L;  }
  }
  if( r>+1.7976931348623157081452742373e+308L ){
    return DBL_MAX*2.0;
  }
  return (double)r;
#else
  (void)s; (void)e;
  return 0.0;
#endif
}

/* Whether sqlgit_atof343_calc_ld80 computes as x86-64's sqlite3 3.43-3.46. */
const int sqlgit_atof343_native = HAVE_LD80;
