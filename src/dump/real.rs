//! Exact SQL spelling of REAL values.
//!
//! Dumps must restore bit for bit with the `sqlite3` CLI 3.40, whose decimal parser
//! (`sqlite3AtoF`) is not correctly rounded: it scales an integer significand by a power of ten
//! in x87 `long double` and then stores to `double` (double rounding), so even the shortest
//! round-trip literal sometimes reads back one ulp off, mostly for subnormals and huge or tiny
//! exponents. We therefore print the shortest literal (ryu) only when a copy of 3.40's parser
//! (`csrc/atof340.c`, built by `build.rs`) reads it back exactly, and otherwise `ieee754(M,E)`,
//! which that CLI evaluates exactly; [`register_sql_functions`] gives our own restore path (the
//! bundled, correctly rounding SQLite) the same function.

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use std::ffi::{c_char, c_int};

unsafe extern "C" {
    /// `csrc/atof340.c`: what SQLite 3.40.1's `sqlite3AtoF` makes of the `len` bytes at `z`.
    fn sqlgit_atof340(z: *const c_char, len: c_int) -> f64;
}

/// What sqlite3 3.40 reads the (short, unsigned) decimal literal `lit` as.
fn atof340(lit: &str) -> f64 {
    // SAFETY: pointer and length describe a live byte slice (at most ~25 bytes: a ryu string),
    // which the C code only reads.
    unsafe { sqlgit_atof340(lit.as_ptr().cast(), lit.len() as c_int) }
}

/// Append to `out` an SQL expression that sqlite3 (3.40 and newer) evaluates to exactly `v`
/// (same 64 bits): the shortest round-trip literal when 3.40 reads it back exactly, else
/// `ieee754(M,E)`. NaN (which SQLite stores as NULL) is written as `NULL`, infinities as `±1e999`.
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
    if a.is_infinite() || atof340(lit).to_bits() == a.to_bits() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use std::{fmt::Write as _, io::Write as _, process::Command};

    const SPECIAL: &str = "-0 0 inf -inf 0.1 0.99 3.14 1 -2.5 1e300 123456.789 2.5e-7 1e16 \
        9007199254740993 2.2250738585072014e-308 1.7976931348623157e308 5e-324 \
        -1.7976931348623157e308 2.225073858507201e-308 2.220446049250313e-16";

    fn parse<T: std::str::FromStr<Err: std::fmt::Debug>>(list: &str) -> Vec<T> {
        list.split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    fn lit(v: f64) -> String {
        let mut out = Vec::new();
        write_real(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    /// ~100k doubles: the special values, powers of ten, random bit patterns, subnormals,
    /// |exponent| near 290..308, integers, prices, and short decimals.
    fn sample_values() -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(0x5eed_7e57);
        let mut v: Vec<f64> = parse(SPECIAL);
        v.extend((-330..=310).map(|k| format!("1e{k}").parse::<f64>().unwrap()));
        v.extend(
            (0..40_000)
                .map(|_| f64::from_bits(rng.random()))
                .filter(|x| !x.is_nan()),
        );
        for i in 0..60_000 {
            let sign = u64::from(rng.random::<bool>()) << 63;
            let frac = rng.random_range(0..1u64 << 52);
            let (e_hi, e_lo) = (rng.random_range(1960..2047), rng.random_range(1..=88));
            v.push(match i % 6 {
                0 => f64::from_bits(sign | frac.max(1)), // subnormal
                1 => f64::from_bits(sign | if rng.random() { e_hi } else { e_lo } << 52 | frac),
                2 => (rng.random_range(-(1i64 << 62)..1 << 62) >> rng.random_range(0..62)) as f64,
                3 => rng.random_range(0..1_000_000) as f64 + 0.99,
                4 => rng.random_range(-1_000_000..1_000_000) as f64 / 100.0,
                _ => {
                    let (d, e) = (rng.random_range(1..100_000), rng.random_range(-330..310));
                    format!("{d}e{e}").parse().unwrap()
                }
            });
        }
        v
    }

    /// Runs `script` in one `sqlite3 -bail :memory:` process and returns its stdout.
    fn run_cli(script: &str) -> String {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(script.as_bytes()).unwrap();
        let out = Command::new("sqlite3")
            .args(["-bail", ":memory:"])
            .stdin(std::fs::File::open(f.path()).unwrap())
            .output()
            .expect("this test needs the `sqlite3` CLI (3.40+) on PATH");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "sqlite3: {err}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Script inserting `(i, lits[i])` into a new table `name`.
    fn inserts(name: &str, lits: impl Iterator<Item = String>) -> String {
        let mut s = format!("CREATE TABLE {name}(i INTEGER PRIMARY KEY, x);\nBEGIN;\n");
        for (i, l) in lits.enumerate() {
            writeln!(s, "INSERT INTO {name} VALUES({i}, {l});").unwrap();
        }
        s + "COMMIT;\n"
    }

    #[test]
    fn sqlite3_cli_reads_back_exact_bits() {
        let values = sample_values();
        // Also check the C model itself against the CLI on arbitrary (non-shortest) literals.
        let mut rng = StdRng::seed_from_u64(340);
        let raw: Vec<String> = (0..30_000)
            .map(|_| {
                let n = rng.random_range(1..=21);
                let d: String = (0..n)
                    .map(|_| char::from(rng.random_range(b'0'..=b'9')))
                    .collect();
                let (dot, e) = (rng.random_range(0..=n), rng.random_range(-345..330));
                format!("{}.{}e{e}", &d[..dot], &d[dot..])
            })
            .collect();
        let mut script = inserts("t", values.iter().map(|&v| lit(v)));
        script += &inserts("u", raw.iter().cloned());
        script += "SELECT 't', i, hex(ieee754_to_blob(x)), typeof(x) FROM t ORDER BY i;\n";
        script += "SELECT 'u', i, hex(ieee754_to_blob(x)), typeof(x) FROM u ORDER BY i;\n";
        let (mut nt, mut nu) = (0, 0);
        for line in run_cli(&script).lines() {
            let f: Vec<&str> = line.split('|').collect();
            let i: usize = f[1].parse().unwrap();
            let got = u64::from_str_radix(f[2], 16).unwrap();
            if f[0] == "t" {
                let (v, l) = (values[i], lit(values[i]));
                assert_eq!((got, f[3]), (v.to_bits(), "real"), "{v:e} written as {l}");
                nt += 1;
            } else {
                let want = atof340(&raw[i]).to_bits();
                assert_eq!(got, want, "C model disagrees on {}", raw[i]);
                nu += 1;
            }
        }
        assert_eq!((nt, nu), (values.len(), raw.len()));
    }

    #[test]
    fn rusqlite_reads_back_exact_bits() {
        let values = sample_values();
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        register_sql_functions(&conn).unwrap();
        conn.execute_batch(&inserts("t", values.iter().map(|&v| lit(v))))
            .unwrap();
        let mut stmt = conn.prepare("SELECT i, x FROM t ORDER BY i").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            let v = values[n];
            assert_eq!(row.get::<_, i64>(0).unwrap(), n as i64);
            match row.get_ref(1).unwrap() {
                ValueRef::Real(x) => assert_eq!(x.to_bits(), v.to_bits(), "{v:e} as {}", lit(v)),
                other => panic!("{v:e} written as {} read back as {other:?}", lit(v)),
            }
            n += 1;
        }
        assert_eq!(n, values.len());
    }

    #[test]
    fn common_values_stay_plain() {
        for s in "0.1 0.99 3.14 1.0 -2.5 1e300 -0.0 123456.789 2.5e-7".split(' ') {
            assert_eq!(lit(s.parse().unwrap()), s);
        }
        for v in parse::<f64>("19.99 1e-300 1e-7 1.7976931348623157e308 42 0.3 1e22 -1e100") {
            assert!(!lit(v).contains("ieee754("), "{v:e} -> {}", lit(v));
        }
        let mut rng = StdRng::seed_from_u64(7);
        let (mut n, mut special) = (0, 0);
        while n < 100_000 {
            let v = f64::from_bits(rng.random());
            if v.is_finite() {
                n += 1;
                special += usize::from(lit(v).starts_with("ieee754("));
            }
        }
        let pct = 100.0 * special as f64 / n as f64;
        println!("random finite doubles needing ieee754(M,E): {special}/{n} = {pct:.3}%");
        assert!(pct < 5.0, "too many ieee754() forms: {pct}%");
    }

    #[test]
    fn ieee754_matches_cli() {
        let ms: Vec<i64> = parse(
            "0 1 -1 2 3 5 181 -181 4503599627370495 4503599627370496 9007199254740993 \
             9223372036854775807 -9223372036854775807 -77 123456789012345 -8070450532247928832",
        );
        let es: Vec<i64> = parse(
            "-20000 -10001 -10000 -9999 -3071 -2000 -1200 -1138 -1126 -1100 -1075 -1074 -1060 \
             -1023 -1022 -1000 -999 -52 -2 0 1 52 900 971 972 999 1000 5000 10000 10001 20000",
        );
        let pairs: Vec<(i64, i64)> = ms
            .iter()
            .flat_map(|&m| es.iter().map(move |&e| (m, e)))
            .collect();
        let doubles: Vec<f64> = sample_values().into_iter().step_by(300).collect();
        let s = &mut String::new();
        for (i, (m, e)) in pairs.iter().enumerate() {
            writeln!(s, "SELECT 'v',{i},hex(ieee754_to_blob(ieee754({m},{e})));").unwrap();
        }
        for (i, d) in doubles.iter().enumerate() {
            let b = d.to_bits();
            writeln!(s, "SELECT 'p',{i},ieee754(ieee754_from_blob(x'{b:016X}'));").unwrap();
        }
        let out = run_cli(s);
        for line in out.lines() {
            let f: Vec<&str> = line.split('|').collect();
            let i: usize = f[1].parse().unwrap();
            if f[0] == "v" {
                let ((m, e), want) = (pairs[i], ieee754_value(pairs[i].0, pairs[i].1));
                let ours = (!want.is_nan()).then(|| format!("{:016X}", want.to_bits()));
                assert_eq!(ours.unwrap_or_default(), f[2], "ieee754({m},{e})");
            } else {
                let (m, e) = ieee754_parts(doubles[i]);
                assert_eq!(format!("ieee754({m},{e})"), f[2], "for {:e}", doubles[i]);
            }
        }
        assert_eq!(out.lines().count(), pairs.len() + doubles.len());
    }
}
