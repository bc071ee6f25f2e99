//! Exact SQL spelling of REAL values.
//!
//! Dumps must restore bit for bit with the `sqlite3` CLI 3.40 on any platform, whose decimal
//! parser (`sqlite3AtoF`) is not correctly rounded: it scales an integer significand by a power of
//! ten in `long double` and then stores to `double` (double rounding), so even the shortest
//! round-trip literal sometimes reads back one ulp off, mostly for subnormals, 17-digit values and
//! huge or tiny exponents. Which literals go wrong depends on what `long double` is where that
//! sqlite3 was built, so there are four [`Model`]s (`csrc/atof340.c`, built by `build.rs`):
//! x87 80-bit (Linux x86-64), IEEE binary128 (aarch64 Linux), plain `double` (macOS arm64 and
//! other gcc/clang builds where `long double` is `double`), and plain `double` with MSVC's
//! table-driven `sqlite3Pow10` (Windows), whose 1e64, 1e128 and 1e256 differ from repeated
//! squaring. A dump made anywhere must restore exactly everywhere, so we print the shortest
//! literal (ryu) only when every model reads it back exactly, and otherwise `ieee754(M,E)`, which
//! the CLI evaluates exactly on every platform. Later versions parse differently again (3.43-3.51
//! by other roundings, see [`newer`]): a literal must read back exactly under those too.
//! [`register_sql_functions`] gives our own restore
//! path (the bundled, correctly rounding SQLite) the same function.
//!
//! A model whose C type the build host lacks (no 80-bit type on aarch64, no binary128 with MSVC
//! or Apple clang; see `sqlgit_atof340_native`) counts as "not exact", so such hosts write
//! `ieee754()` more often: still exact everywhere, but such dumps differ textually from x86-64 ones.

/// Which REAL values are spelled as `ieee754(M,E)`, named in the page map's fingerprint: a map
/// made when another rule spelled them describes chunks whose text a dump no longer writes, so
/// a run with it reads everything (once).
pub const SPELLING: &str = "read back by 3.40's four models and 3.43's x87, clear of midpoints";

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use std::ffi::{c_char, c_int};

unsafe extern "C" {
    /// `csrc/atof340.c`: the parsing half of 3.40.1's `sqlite3AtoF` on the `len` bytes at `z`.
    /// Returns 0 with the (signed zero) result in `*zero`, or 1 with `*s`, `*e`, `*esign`.
    /// Fills the power-of-ten tables; must run once before any `sqlgit_atof340_calc_*`.
    fn sqlgit_atof340_init();
    fn sqlgit_atof340_parse(
        z: *const c_char,
        len: c_int,
        s: *mut i64,
        e: *mut c_int,
        esign: *mut c_int,
        zero: *mut f64,
    ) -> c_int;
    /// The floating-point half, one per [`Model`], on what `sqlgit_atof340_parse` returned.
    fn sqlgit_atof340_calc_ld80(s: i64, e: c_int, esign: c_int) -> f64;
    fn sqlgit_atof340_calc_f128(s: i64, e: c_int, esign: c_int) -> f64;
    fn sqlgit_atof340_calc_f64(s: i64, e: c_int, esign: c_int) -> f64;
    fn sqlgit_atof340_calc_f64msvc(s: i64, e: c_int, esign: c_int) -> f64;
    /// Sufficient test that [`Model::F128`] reads the literal as the correctly rounded double
    /// (1), computed from the x87 result; 0 where unknown. Not part of 3.40, see the C comment.
    fn sqlgit_atof340_f128_is_correct(s: i64, e: c_int, esign: c_int) -> c_int;
    /// Whether this build computes each model (in [`Model::ALL`] order) as its platform does.
    static sqlgit_atof340_native: [c_int; 4];
}

/// What sqlite3 3.40's `long double` is, i.e. whose decimal parser we model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// x87 80-bit extended (64-bit significand): Linux, BSD and MinGW on x86-64.
    Ld80,
    /// IEEE binary128 (113-bit significand): aarch64 Linux, riscv64, s390x.
    F128,
    /// `long double` is `double`, gcc/clang (`sqlite3Pow10` squares): macOS arm64, 32-bit ARM.
    F64,
    /// `long double` is `double`, MSVC (`sqlite3Pow10` uses a table of literals): Windows.
    F64Msvc,
}

/// A decimal literal as 3.40's parser sees it before any floating-point work.
enum Parsed {
    /// The significand is zero: the result (a signed zero).
    Zero(f64),
    /// Signed non-zero significand `s` and exponent `esign * e`, `e >= 0`, exponent reduced.
    Num { s: i64, e: c_int, esign: c_int },
}

fn parse340(lit: &str) -> Parsed {
    let (mut s, mut e, mut esign, mut zero) = (0, 0, 0, 0.0);
    // SAFETY: pointer and length describe a live byte slice (at most ~25 bytes: a ryu string)
    // which the C code only reads; the out-pointers are to live locals.
    let r = unsafe {
        sqlgit_atof340_parse(
            lit.as_ptr().cast(),
            lit.len() as c_int,
            &mut s,
            &mut e,
            &mut esign,
            &mut zero,
        )
    };
    if r == 0 {
        Parsed::Zero(zero)
    } else {
        Parsed::Num { s, e, esign }
    }
}

impl Model {
    pub const ALL: [Model; 4] = [Model::Ld80, Model::F128, Model::F64, Model::F64Msvc];

    /// Whether this build computes the model exactly as its platform does.
    pub fn is_native(self) -> bool {
        // SAFETY: a constant array defined in csrc/atof340.c.
        unsafe { sqlgit_atof340_native[self as usize] != 0 }
    }

    fn calc(self, s: i64, e: c_int, esign: c_int) -> f64 {
        static INIT: std::sync::Once = std::sync::Once::new();
        // SAFETY: runs once, before any calc function reads the tables it fills.
        INIT.call_once(|| unsafe { sqlgit_atof340_init() });
        // SAFETY: functions of plain values that only read the (now immutable) tables.
        unsafe {
            match self {
                Model::Ld80 => sqlgit_atof340_calc_ld80(s, e, esign),
                Model::F128 => sqlgit_atof340_calc_f128(s, e, esign),
                Model::F64 => sqlgit_atof340_calc_f64(s, e, esign),
                Model::F64Msvc => sqlgit_atof340_calc_f64msvc(s, e, esign),
            }
        }
    }

    fn f128_is_correct(s: i64, e: c_int, esign: c_int) -> bool {
        Model::Ld80.calc(1, 0, 1); // the tables are filled
        // SAFETY: a function of plain values that only reads the filled tables.
        unsafe { sqlgit_atof340_f128_is_correct(s, e, esign) != 0 }
    }

    /// What sqlite3 3.40 on this model's platforms reads the decimal literal `lit` as, or
    /// `None` if this build cannot compute the model.
    pub fn read(self, lit: &str) -> Option<f64> {
        if !self.is_native() {
            return None;
        }
        Some(match parse340(lit) {
            Parsed::Zero(z) => z,
            Parsed::Num { s, e, esign } => self.calc(s, e, esign),
        })
    }
}

/// Whether sqlite3 3.40 reads `lit` back as exactly `want` under every [`Model`], and every
/// later sqlite3 does too ([`newer`]).
fn reads_back_everywhere(lit: &str, want: f64) -> bool {
    let want = want.to_bits();
    let (s, e, esign) = match parse340(lit) {
        Parsed::Zero(z) => return z.to_bits() == want,
        Parsed::Num { s, e, esign } => (s, e, esign),
    };
    if e == 0 {
        // `(double)s`: the same correctly rounded conversion in every model.
        return (s as f64).to_bits() == want;
    }
    // Clinger's fast path: if |s| <= 2^53 and e <= 22, then s and 10^e are exact in double (so
    // in every model; both sqlite3Pow10 variants only form exact powers 10^k, k <= 22), and:
    // - F64, F64Msvc compute one correctly rounded double multiply or divide, i.e. the correctly
    //   rounded value of the literal, which is `want` because ryu's literal round-trips.
    // - F128: a multiply is exact (|s| * 5^22 < 2^53 * 2^51.1 < 2^113), then rounded once to
    //   double. For a divide x = s / 10^e, any double midpoint m = M * 2^q (M < 2^54, q <= 0
    //   as x < 2^53) with x != m has |x - m| = |s * 2^-q - M * 5^e| * 2^q / 5^e >= 2^q / 5^e, so
    //   |x - m| / m > 2^-54 * 5^-22 > 2^-106 > 2^-113 (half a binary128 ulp): rounding to
    //   binary128 cannot land on or cross a midpoint, so the double rounding is harmless.
    // Only Ld80 (rounding to 64 bits can land on a midpoint) is left to compute.
    let fast = e <= 22 && s.unsigned_abs() <= 1 << 53;
    // F64Msvc equals F64 unless sqlite3Pow10 uses MSVC's 1e64, 1e128 or 1e256 (e in 64..=307;
    // the e > 307 branch only asks for 10^(e-308) <= 10^33): both multiply 1.0 by the same
    // factors in the same order, and MSVC's 1e1..1e32 equal the squares (1e32 = fl(1e16^2),
    // as 1e16 is exact), see `msvc_table_matches_squaring_below_1e64`.
    let msvc_differs = (64..=307).contains(&e);
    // Cheapest and most often wrong first; F128 (soft-float) last.
    let order: &[Model] = if fast {
        &[Model::Ld80]
    } else if msvc_differs {
        &[Model::F64, Model::F64Msvc, Model::Ld80, Model::F128]
    } else {
        &[Model::F64, Model::Ld80, Model::F128]
    };
    order.iter().all(|&m| {
        // F128 soft-float is the slowest model: skip it where the x87 intermediate proves it
        // correctly rounded (and so `want`, as ryu's literal round-trips).
        m.is_native()
            && (m == Model::F128 && Model::f128_is_correct(s, e, esign)
                || m.calc(s, e, esign).to_bits() == want)
    }) && newer::reads_back_after_340(want, s, e, esign)
}

/// Append to `out` an SQL expression that sqlite3 (3.40 and newer) evaluates to exactly `v`
/// (same 64 bits) on every platform: the shortest round-trip literal when 3.40 reads it back
/// exactly under every [`Model`] and every later version does too, else `ieee754(M,E)`. NaN (which SQLite stores as NULL) is
/// written as `NULL`, infinities as `±1e999`.
pub fn write_real(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NULL");
        return;
    }
    let a = v.abs();
    let mut buf = ryu::Buffer::new();
    let lit = if a.is_infinite() {
        "1e999"
    } else {
        buf.format_finite(a)
    };
    if a.is_infinite() || reads_back_everywhere(lit, a) {
        // Negation is exact, and the tokenizer hands sqlite3AtoF the unsigned literal anyway.
        if v.is_sign_negative() {
            out.push(b'-');
        }
        out.extend_from_slice(lit.as_bytes());
    } else {
        let (m, e) = ieee754_parts(v);
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"ieee754(");
        out.extend_from_slice(num.format(m).as_bytes());
        out.push(b',');
        out.extend_from_slice(num.format(e).as_bytes());
        out.push(b')');
    }
}

/// How today's dump spells the REAL literal `lit` (a decimal with a `.` or an exponent, or
/// `ieee754(M,E)`, either with a `-`), when that is other text: a snapshot taken before the
/// rule last changed spells some values otherwise (see [`SPELLING`]). None for anything else.
pub fn respelled(lit: &[u8]) -> Option<Vec<u8>> {
    if !lit
        .first()
        .is_some_and(|b| b.is_ascii_digit() || b"-i".contains(b))
    {
        return None; // text, blobs, NULL: most values, told by their first byte
    }
    let (neg, body) = match lit.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, lit),
    };
    let text = std::str::from_utf8(body).ok()?;
    let v = if text.starts_with("ieee754(") {
        ieee754_literal(text)?
    } else if text
        .bytes()
        .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
        && text.bytes().any(|b| b".eE".contains(&b))
        && text.starts_with(|c: char| c.is_ascii_digit())
    {
        text.parse::<f64>().ok()?
    } else {
        return None;
    };
    let mut out = Vec::with_capacity(lit.len() + 8);
    write_real(&mut out, if neg { -v } else { v });
    (out != lit).then_some(out)
}

/// The `(M, E)` that the CLI's one-argument `ieee754(X)` prints for `x` (ext/misc/ieee754.c of
/// 3.40, quirks included: -0.0 gives `(1,-3071)`). For finite non-zero `x`, `x == M * 2^E`.
fn ieee754_parts(x: f64) -> (i64, i64) {
    let neg = x < 0.0;
    let a = (if neg { -x } else { x }).to_bits() as i64;
    if a == 0 {
        return (0, -1075);
    }
    let mut e = a >> 52; // arithmetic shift, as in C (matters only for -0.0)
    let mut m = a & ((1 << 52) - 1);
    if e == 0 {
        m <<= 1;
    } else {
        m |= 1 << 52;
    }
    while e < 1075 && m > 0 && m & 1 == 0 {
        m >>= 1;
        e += 1;
    }
    (if neg { -m } else { m }, e - 1075)
}

/// The value of the literal `ieee754(M,E)` with integers M and E, as [`ieee754_value`] gives it;
/// None for any other text.
pub fn ieee754_literal(lit: &str) -> Option<f64> {
    let args = lit.strip_prefix("ieee754(")?.strip_suffix(')')?;
    let (m, e) = args.split_once(',')?;
    Some(ieee754_value(
        m.trim().parse().ok()?,
        e.trim().parse().ok()?,
    ))
}

/// What the sqlite3 CLI's `ieee754(M,E)` returns (ext/misc/ieee754.c of 3.40, bit for bit,
/// including its clamping, truncating subnormals, and `(0,E)` giving 0.0 only for |E| < 1000).
/// Returns NaN where the CLI returns NULL (results with a NaN bit pattern, and `M == i64::MIN`,
/// on which 3.40 actually loops forever).
pub fn ieee754_value(m: i64, e: i64) -> f64 {
    let mut e = e.clamp(-10000, 10000);
    let mut m = m;
    let neg = m < 0;
    if neg {
        if m == i64::MIN {
            return f64::NAN;
        }
        m = -m;
    } else if m == 0 && e > -1000 && e < 1000 {
        return 0.0;
    }
    while (m >> 32) & 0xffe0_0000 != 0 {
        m >>= 1;
        e += 1;
    }
    while m != 0 && (m >> 32) & 0xfff0_0000 == 0 {
        m <<= 1;
        e -= 1;
    }
    e += 1075;
    if e <= 0 {
        m = if 1 - e >= 64 { 0 } else { m >> (1 - e) };
        e = 0;
    } else if e > 0x7ff {
        e = 0x7ff;
    }
    let bits = (m & ((1 << 52) - 1)) as u64 | (e as u64) << 52 | u64::from(neg) << 63;
    f64::from_bits(bits)
}

/// `sqlite3_value_int64()` of a function argument, approximately as SQLite converts it.
fn int_arg(v: ValueRef<'_>) -> i64 {
    match v {
        ValueRef::Integer(i) => i,
        ValueRef::Real(r) => r as i64, // saturating, like SQLite's doubleToInt64
        ValueRef::Null => 0,
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let t = t.trim_ascii_start();
            let (neg, t) = match t.first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t),
            };
            let mut u: i128 = 0;
            for &c in t.iter().take_while(|c| c.is_ascii_digit()) {
                u = (u * 10 + i128::from(c - b'0')).min(1 << 64);
            }
            (if neg { -u } else { u }).clamp(i64::MIN.into(), i64::MAX.into()) as i64
        }
    }
}

/// Register the scalar function `ieee754(M,E)` (as [`ieee754_value`]; NULL where that is NaN)
/// on `conn`, so that our own restore code can load dumps that contain it.
pub fn register_sql_functions(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("ieee754", 2, flags, |ctx| {
        let v = ieee754_value(int_arg(ctx.get_raw(0)), int_arg(ctx.get_raw(1)));
        Ok((!v.is_nan()).then_some(v))
    })
}

mod newer;
#[cfg(test)]
mod tests;
