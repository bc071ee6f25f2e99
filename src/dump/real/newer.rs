//! Whether the sqlite3 CLIs after 3.40 read a REAL literal back exactly.
//!
//! SQLite 3.43 rewrote the floating-point half of its decimal parser, and 3.47 and 3.53 changed
//! it again (`csrc/atof343.c` says how). 3.53's is correctly rounding, so it reads every
//! shortest round-trip literal exactly. From 3.43 to 3.51 the significand is scaled by one power
//! of ten after another, each product rounded: in x87 `long double` (3.43-3.46 on x86-64, the
//! sqlite3 of Debian 13 and Ubuntu 24.04), which is computed here exactly and is the least
//! accurate; in binary128 (3.43-3.46 on aarch64 Linux) or in double-double (macOS and Windows,
//! and everywhere from 3.47), each within a tiny fraction of an x87 ulp of the exact value,
//! however the compiler fused its multiply-adds. Those are trusted only where the exact value
//! lies clear of every midpoint between two doubles, so that any of them rounds it to the
//! correctly rounded double, which the shortest literal of a double always reads back as.

use std::ffi::c_int;

unsafe extern "C" {
    /// `csrc/atof343.c`: the parsing half of 3.43's `sqlite3AtoF` (`late`: 3.47's exponent
    /// loop) on the `len` bytes at `z`. Returns 0 for a zero significand, else 1 with `*s`, `*e`.
    #[cfg(test)]
    fn sqlgit_atof343_parse(
        z: *const u8,
        len: c_int,
        late: c_int,
        s: *mut u64,
        e: *mut c_int,
    ) -> c_int;
    /// The x87 loop of 3.43-3.46 on what `sqlgit_atof343_parse` returned (unsigned).
    fn sqlgit_atof343_calc_ld80(s: u64, e: c_int) -> f64;
    /// Whether `sqlgit_atof343_calc_ld80` computes as x86-64 does (this build has x87).
    static sqlgit_atof343_native: c_int;
    /// `csrc/atof340.c`: whether the exact value of 3.40's reduced literal (s, e, esign) is a
    /// normal double lying more than `margin` x87 ulps from every midpoint between two doubles.
    fn sqlgit_atof_clear_of_midpoint(s: i64, e: c_int, esign: c_int, margin: c_int) -> c_int;
}

/// Whether every sqlite3 from 3.43 on reads a shortest round-trip literal back as exactly `want`
/// (its bits, unsigned), given the literal as 3.40's parser reduced it: `(s, e, esign)`.
pub(super) fn reads_back_after_340(want: u64, s: i64, e: c_int, esign: c_int) -> bool {
    // 3.43's parse of the literal, from 3.40's: the same digits, trailing zeros dropped the same
    // way for a negative exponent; a positive one is folded into the significand further, up to
    // the unsigned bound. (Shortest literals have at most 17 digits: no digit is ever dropped.)
    let (mut s343, mut e343) = (s.unsigned_abs(), if esign < 0 { -e } else { e });
    while e343 > 0 && s343 < u64::MAX / 10 {
        s343 *= 10;
        e343 -= 1;
    }
    if e343 == 0 {
        // `(double)s` (double-double: `s` split into two exact halves, then summed): correctly
        // rounded in every version, so `want`.
        return true;
    }
    // SAFETY: a constant defined in csrc/atof343.c.
    if unsafe { sqlgit_atof343_native } == 0 || s343 >= u64::MAX - 2047 {
        // No x87 type to compute with; or a significand that rounds to 2^64 as a double,
        // which 3.43-3.46's double-double start converts back to an integer out of range.
        return false;
    }
    // SAFETY: functions of plain values (the x87 power table is filled by the 3.40 models,
    // which the caller ran first).
    let ld80 = unsafe { sqlgit_atof343_calc_ld80(s343, e343) };
    if ld80.to_bits() != want {
        return false;
    }
    // 3.40's x87 result is the exact value rounded once while 10^e is exact (e <= 27, off by
    // half an ulp). Above, sqlite3Pow10's squares from 1e32 on are rounded and each squaring
    // doubles the error (1e256 is within 15 ulps), the products of squares add one rounding
    // each: with the last multiply or divide, within 22 ulps for e <= 307.
    let margin = if e <= 27 { 2 } else { 32 };
    // SAFETY: a function of plain values that only reads the filled tables.
    unsafe { sqlgit_atof_clear_of_midpoint(s, e, esign, margin) != 0 }
}

/// What sqlite3 3.43-3.46 on x86-64 reads `lit` as (None: this build has no x87 type).
#[cfg(test)]
pub(super) fn read_343_ld80(lit: &str) -> Option<f64> {
    // SAFETY: as in `reads_back_after_340`.
    unsafe {
        if sqlgit_atof343_native == 0 {
            return None;
        }
        let (mut s, mut e) = (0u64, 0);
        if sqlgit_atof343_parse(lit.as_ptr(), lit.len() as c_int, 0, &mut s, &mut e) == 0 {
            return Some(0.0);
        }
        Some(sqlgit_atof343_calc_ld80(s, e))
    }
}
