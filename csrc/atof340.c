/*
** Model of sqlite3AtoF() from src/util.c of SQLite 3.40.1 (UTF-8 path only),
** used by src/dump/real.rs to decide whether the sqlite3 3.40 CLI reads a
** decimal literal back to the exact double we mean.  The parsing and
** scaling steps below are copied from 3.40.1 unchanged (including the
** LONGDOUBLE_TYPE double rounding); only the UTF-16 handling and the return
** code were dropped.  Do NOT "fix" anything here: the inaccuracy is the point.
*/
#include <math.h>
#include <stdint.h>

typedef int64_t i64;
#define LONGDOUBLE_TYPE long double
#define LARGEST_INT64 (0xffffffff|(((i64)0x7fffffff)<<32))
#define sqlite3Isdigit(x) ((x)>='0' && (x)<='9')
#define sqlite3Isspace(x) ((x)==' '||((x)>='\t' && (x)<='\r'))

static LONGDOUBLE_TYPE sqlite3Pow10(int E){
  LONGDOUBLE_TYPE x = 10.0;
  LONGDOUBLE_TYPE r = 1.0;
  while(1){
    if( E & 1 ) r *= x;
    E >>= 1;
    if( E==0 ) break;
    x *= x;
  }
  return r;
}

double sqlgit_atof340(const char *z, int length){
  int incr = 1;
  const char *zEnd = z + length;
  int sign = 1;    /* sign of significand */
  i64 s = 0;       /* significand */
  int d = 0;       /* adjust exponent for shifting decimal point */
  int esign = 1;   /* sign of exponent */
  int e = 0;       /* exponent */
  double result;

  if( length==0 ) return 0.0;
  while( z<zEnd && sqlite3Isspace(*z) ) z+=incr;
  if( z>=zEnd ) return 0.0;
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
    result = sign<0 ? -(double)0 : (double)0;
  } else {
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
    s = sign<0 ? -s : s;
    if( e==0 ){
      result = (double)s;
    }else{
      /* attempt to handle extremely small/large numbers better */
      if( e>307 ){
        if( e<342 ){
          LONGDOUBLE_TYPE scale = sqlite3Pow10(e-308);
          if( esign<0 ){
            result = s / scale;
            result /= 1.0e+308;
          }else{
            result = s * scale;
            result *= 1.0e+308;
          }
        }else{
          if( esign<0 ){
            result = 0.0*s;
          }else{
#ifdef INFINITY
            result = INFINITY*s;
#else
            result = 1e308*1e308*s;  /* Infinity */
#endif
          }
        }
      }else{
        LONGDOUBLE_TYPE scale = sqlite3Pow10(e);
        if( esign<0 ){
          result = s / scale;
        }else{
          result = s * scale;
        }
      }
    }
  }
  return result;
}
