/*
** The floating-point half of sqlite3AtoF() from src/util.c of SQLite 3.40.1,
** copied unchanged except that the code lives in a function of its own:
** csrc/atof340.c includes this file once per platform model, each time with
** LONGDOUBLE_TYPE (the type 3.40 computes the power of ten and the scaled
** significand in), ATOF_CALC (the function name) and ATOF_POW10 (the
** sqlite3Pow10 variant) defined.  (s, e, esign) are what the parsing half
** leaves: s signed and non-zero, e>=0 after the "reduce exponent" loop.
** Every step below is done exactly as the C compiler does it on the modelled
** platform: i64 -> LONGDOUBLE_TYPE conversion (exact for 64- and 113-bit
** significands, rounded for double), one rounded LONGDOUBLE_TYPE multiply or
** divide, the rounding store into the double `result`, and (for e>307) one
** more double operation.  Do NOT "fix" anything: the inaccuracy is the point.
*/
double ATOF_CALC(i64 s, int e, int esign){
  double result;
  if( e==0 ){
    result = (double)s;
  }else{
    /* attempt to handle extremely small/large numbers better */
    if( e>307 ){
      if( e<342 ){
        LONGDOUBLE_TYPE scale = ATOF_POW10(e-308);
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
      LONGDOUBLE_TYPE scale = ATOF_POW10(e);
      if( esign<0 ){
        result = s / scale;
      }else{
        result = s * scale;
      }
    }
  }
  return result;
}
