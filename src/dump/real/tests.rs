//! Unit tests of the exact SQL spelling of REAL values (`real.rs`), in their own file so that the
//! code stays short enough to read whole.

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

/// The model of the `sqlite3` CLI on PATH (assumed built for this host, as Debian's is).
fn host_model() -> Model {
    if cfg!(target_env = "msvc") {
        Model::F64Msvc
    } else if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        Model::Ld80
    } else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
        Model::F128
    } else {
        Model::F64
    }
}

/// The version of the `sqlite3` CLI on PATH, as (minor, patch) of 3.x.
fn cli_version() -> (u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let v = run_cli("SELECT sqlite_version();");
        let parts: Vec<u32> = v.trim().split('.').map(|p| p.parse().unwrap()).collect();
        (parts[1], parts[2])
    })
}

/// What the `sqlite3` CLI on PATH reads the decimal literal `raw` as, by its version's model;
/// None where no model computes it here (3.47-3.51's double-double, or another host).
fn cli_reads(raw: &str) -> Option<f64> {
    match cli_version().0 {
        ..=42 => host_model().read(raw),
        43..=46 if host_model() == Model::Ld80 => newer::read_343_ld80(raw),
        _ => None,
    }
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
            if let Some(want) = cli_reads(&raw[i]) {
                assert_eq!(got, want.to_bits(), "the model disagrees on {}", raw[i]);
            }
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
    // (Not 1e23: it lies so close to a midpoint between two doubles that the double-double
    // parsers of sqlite3 3.43-3.51 need not round it right.)
    for s in "0.1 0.99 3.14 1.0 -2.5 -0.0 123456.789 2.5e-7 1e22 1e50 3.141592653589793 \
            0.30000000000000004 2.718281828459045 0.1234567890123"
        .split(' ')
    {
        assert_eq!(lit(s.parse().unwrap()), s);
    }
    for v in parse::<f64>("19.99 1e-7 42 0.3 1e22 -1e15 1e-10") {
        assert!(!lit(v).contains("ieee754("), "{v:e} -> {}", lit(v));
    }
    // Everyday data (up to 15 significant digits, small exponents) almost always stays
    // short: only x87 double rounding can hit it (e.g. 3265552.91651327, see DISAGREE), or a
    // value lying too close to a midpoint for 3.43-3.51's parsers (1 in ~700).
    let mut rng = StdRng::seed_from_u64(7);
    let n = 100_000;
    let special = (0..n)
        .filter(|_| {
            let digits = rng.random_range(1..1_000_000_000_000_000i64);
            let v = digits as f64 / 10f64.powi(rng.random_range(0..12));
            lit(v).starts_with("ieee754(")
        })
        .count();
    eprintln!("up to 15 digits, |exponent| < 12: {special}/{n} need ieee754(M,E)");
    assert!(special * 1000 < 3 * n, "{special}/{n}");
}

#[test]
fn msvc_table_matches_squaring_below_1e64() {
    // The premise of `msvc_differs` in `reads_back_everywhere`, on every significand size.
    for e in 1..64 {
        for s in [
            "1",
            "3",
            "7",
            "123456789",
            "9007199254740993",
            "12345678901234567",
        ] {
            for sign in ["", "-"] {
                let l = format!("{s}e{sign}{e}");
                let (a, b) = (Model::F64.read(&l), Model::F64Msvc.read(&l));
                assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{l}");
            }
        }
    }
    // From 1e64 on they differ (1e64 itself is reduced to 10^18 * 10^46 by 3.40's parser).
    let l = "6.546578445e134";
    assert_ne!(Model::F64.read(l), Model::F64Msvc.read(l));
}

#[test]
fn f128_shortcut_is_sound() {
    // Wherever the x87-based test claims binary128 rounds correctly, it does; and it
    // claims so for almost all short exponents. Literals: 1 to 19 digits, |e| <= 27.
    let mut rng = Lcg(128);
    let (mut claimed, mut n) = (0, 0);
    for _ in 0..300_000 {
        let digits = rng.next() >> (1 + rng.next() % 63);
        let l = format!("{digits}e-{}", rng.next() % 28);
        let Parsed::Num { s, e, esign } = parse340(&l) else {
            continue;
        };
        let exact = l.parse::<f64>().unwrap();
        n += 1;
        if Model::f128_is_correct(s, e, esign) {
            claimed += 1;
            assert_eq!(Model::F128.read(&l), Some(exact), "{l}");
        }
    }
    eprintln!("f128 shortcut applies to {claimed} of {n} literals with |e| <= 27");
    if Model::Ld80.is_native() && Model::F128.is_native() {
        assert!(claimed * 100 > n * 99, "{claimed} of {n}");
    }
}

/// Shortest literals that the models read differently (found by a search over random
/// doubles), with which models read them back exactly, in [`Model::ALL`] order
/// (ld80, f128, f64, f64msvc). Each must be written as `ieee754(M,E)`.
const DISAGREE: &[(&str, [bool; 4])] = &[
    ("31737812.88468525", [false, true, true, true]), // only x87 misreads
    ("3265552.91651327", [false, true, true, true]),
    ("1.4364026205339607e-299", [true, false, true, true]), // only binary128 misreads
    ("6.00465037931327e-79", [false, true, true, false]),
    ("5.2679136738801e-79", [false, true, false, true]),
    ("4.348548621345e221", [false, true, false, false]), // only binary128 is right
    ("4.085159184776958e-305", [true, false, false, false]), // only x87 is right
    ("9.759238017166963e-294", [false, false, true, true]), // only the doubles are right
    ("6.546578445e134", [true, true, false, true]),      // squaring misreads, MSVC's table not
    ("4.933169545931e99", [true, true, true, false]),    // MSVC's table misreads, squaring not
    ("1e300", [true, true, false, true]),
    ("1e-300", [true, true, false, true]),
    ("-1e100", [true, true, false, true]),
    ("1e200", [true, true, false, false]),
    ("1e-50", [true, true, false, false]),
    ("1.7976931348623157e308", [true, true, false, false]),
];

#[test]
fn disagreeing_models_give_ieee754() {
    for &(s, want) in DISAGREE {
        let v: f64 = s.parse().unwrap();
        let (a, u) = (v.abs(), s.trim_start_matches('-'));
        assert_eq!(
            ryu::Buffer::new().format_finite(a),
            u,
            "not a shortest literal"
        );
        let got = Model::ALL.map(|m| m.read(u).unwrap().to_bits() == a.to_bits());
        assert_eq!(got, want, "{s}: which models read it back exactly");
        let (m, e) = ieee754_parts(v);
        assert_eq!(lit(v), format!("ieee754({m},{e})"), "{s}");
        assert_eq!(check_everywhere(v), want.map(|ok| !ok), "{s}");
    }
}

/// Whether the sqlite3 CLIs from 3.43 on read the shortest literal of `v` back as `v`.
fn newer_read_back(v: f64) -> bool {
    let a = v.abs();
    let short = ryu::Buffer::new().format_finite(a).to_owned();
    match parse340(&short) {
        Parsed::Zero(_) => true,
        Parsed::Num { e: 0, .. } => true,
        Parsed::Num { s, e, esign } => newer::reads_back_after_340(a.to_bits(), s, e, esign),
    }
}

/// Which models (in [`Model::ALL`] order) do NOT read the shortest literal of `v` back as `v`.
fn misreads(v: f64) -> [bool; 4] {
    let a = v.abs();
    let short = ryu::Buffer::new().format_finite(a).to_owned();
    Model::ALL.map(|m| m.read(&short).is_none_or(|x| x.to_bits() != a.to_bits()))
}

/// Asserts that `write_real(v)` restores as `v` under every model, and that it is short
/// exactly when all models read the shortest literal back; returns [`misreads`].
fn check_everywhere(v: f64) -> [bool; 4] {
    let (l, bad) = (lit(v), misreads(v));
    if let Some(args) = l.strip_prefix("ieee754(") {
        let (m, e) = args.trim_end_matches(')').split_once(',').unwrap();
        let back = ieee754_value(m.parse().unwrap(), e.parse().unwrap());
        assert_eq!(back.to_bits(), v.to_bits(), "{v:e} written as {l}");
        assert!(
            bad.contains(&true) || !newer_read_back(v),
            "{v:e} written as {l} though all models read it"
        );
    } else {
        assert!(newer_read_back(v), "{v:e} as {l}: not read back after 3.40");
        if let Some(x) = newer::read_343_ld80(l.trim_start_matches('-')) {
            assert_eq!(
                x.to_bits(),
                v.abs().to_bits(),
                "{v:e} as {l} under 3.43's x87"
            );
        }
        for m in Model::ALL {
            let back = m
                .read(l.trim_start_matches('-'))
                .map(|x| if v < 0.0 { -x } else { x });
            assert_eq!(
                back.map(f64::to_bits),
                Some(v.to_bits()),
                "{v:e} as {l} under {m:?}"
            );
        }
        assert_eq!(bad, [false; 4], "{v:e} written as {l}");
    }
    bad
}

/// Tricky values: subnormals, the normal/subnormal boundary, exponents near +-300 and +-308,
/// 17-digit values, powers of ten and their neighbours, the 1e64/1e128/1e256 steps of
/// MSVC's table, and values that need 1e300-style two-step scaling.
fn tricky_values() -> Vec<f64> {
    let mut v: Vec<f64> = parse(SPECIAL);
    v.extend(parse::<f64>(
        "4.9406564584124654e-324 9.8813129168249309e-324 2.4703282292062328e-323 \
             2.2250738585072009e-308 2.2250738585072014e-308 4.4501477170144023e-308 \
             1.7976931348623157e308 8.98846567431158e307 1.2345678901234567e-300 \
             9.999999999999999e299 1.0000000000000001e300 3.0517578125e-5 \
             1.2345678901234567e-7 0.30000000000000004 9007199254740993 1.7976931348623155e308 \
             1.0000000000000002 0.9999999999999999 123456789012345680000 5.764607523034235e17",
    ));
    for k in -324..=308 {
        let p: f64 = format!("1e{k}").parse().unwrap();
        let q: f64 = format!("9.999999999999999e{k}").parse().unwrap();
        v.extend([
            p,
            f64::from_bits(p.to_bits() + 1),
            f64::from_bits(p.to_bits() - 1),
            q,
        ]);
        v.push(format!("1.2345678901234567e{k}").parse().unwrap());
    }
    for bits in (1..2000u64).chain((0..2000).map(|i| (1u64 << 52) - i)) {
        v.push(f64::from_bits(bits)); // the smallest and largest subnormals
    }
    v.retain(|x| x.is_finite() && *x != 0.0);
    v
}

#[test]
fn tricky_values_read_back_under_every_model() {
    let values = tricky_values();
    let mut bad = [0usize; 5];
    for &v in &values {
        let b = check_everywhere(v);
        for i in 0..4 {
            bad[i] += usize::from(b[i]);
        }
        bad[4] += usize::from(b.contains(&true));
    }
    eprintln!(
        "tricky values misread (ld80 f128 f64 f64msvc any): {bad:?} of {}",
        values.len()
    );
    // The sample must exercise every model: each misreads some shortest literals.
    assert!(bad.iter().all(|&n| n > 0), "{bad:?}");
}

/// Minimal 64-bit LCG (Knuth's MMIX constants), so the sample is fixed without a dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 ^ (self.0 >> 29)
    }
}

#[test]
fn random_values_read_back_under_every_model() {
    let mut rng = Lcg(0x0340_2022_1228);
    let mut report = String::new();
    // Random bit patterns (mostly huge or tiny exponents), then "everyday" magnitudes:
    // random 53-bit significands with binary exponents in -64..64 (about 1e-19 to 1e19).
    for (name, n) in [("random bits", 100_000), ("|x| in 2^-64..2^64", 100_000)] {
        let mut bad = [0usize; 5];
        let mut done = 0;
        while done < n {
            let r = rng.next();
            let v = if name == "random bits" {
                f64::from_bits(r)
            } else {
                let exp = 1023 - 64 + (rng.next() % 128);
                f64::from_bits(r & (1 << 63 | ((1 << 52) - 1)) | exp << 52)
            };
            if !v.is_finite() {
                continue;
            }
            done += 1;
            let b = check_everywhere(v);
            for i in 0..4 {
                bad[i] += usize::from(b[i]);
            }
            bad[4] += usize::from(b.contains(&true));
        }
        let pct = bad.map(|k| format!("{:.3}%", 100.0 * k as f64 / n as f64));
        writeln!(
            report,
            "{name} ({n}): need ieee754 under ld80 {}, f128 {}, f64 {}, \
                f64msvc {}, all combined {}",
            pct[0], pct[1], pct[2], pct[3], pct[4]
        )
        .unwrap();
        // 3.40 with a plain double (macOS arm64, Windows) misreads many 17-digit literals
        // (s > 2^53 is rounded before scaling); x87 and binary128 rarely misread any.
        assert!(bad[0] * 50 < n && bad[1] * 50 < n, "{name}: {bad:?} of {n}");
    }
    eprint!("{report}");
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
            // 3.53 prints -0.0 as (-1,-3071), not 3.40's (1,-3071); sqlgit never writes a zero
            // as ieee754(), and both read back as -0.0.
            if doubles[i] == 0.0 && cli_version().0 > 46 {
                continue;
            }
            let (m, e) = ieee754_parts(doubles[i]);
            assert_eq!(format!("ieee754({m},{e})"), f[2], "for {:e}", doubles[i]);
        }
    }
    assert_eq!(out.lines().count(), pairs.len() + doubles.len());
}
