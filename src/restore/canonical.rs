//! Reading a real the dump wrote: its canonical spelling only (the shortest round-trip digits,
//! laid out as `ryu` lays them out), since that is what SQLite reads back bit for bit. Any other
//! spelling is left to SQLite. Most reals of a dump have at most 15 significant digits; those
//! are recognised from their text alone, without formatting the value again: every decimal of
//! at most 15 digits is the only one of its length or shorter that rounds to its double (normal
//! doubles are 2⁻⁵² apart, relatively; such decimals at least 10⁻¹⁵), so it is the shortest
//! spelling when it has no trailing zero, and only the layout is left to check.

/// The value of `abs` (a real without its sign) when it is the canonical spelling of a finite
/// double: what `ryu` writes for it.
pub fn real(abs: &str) -> Option<f64> {
    short(abs.as_bytes()).or_else(|| formatted_again(abs))
}

/// [`real`] the slow way, for any spelling: parse, format the value again, compare.
fn formatted_again(abs: &str) -> Option<f64> {
    let v: f64 = abs.parse().ok()?;
    (v.is_finite() && ryu::Buffer::new().format_finite(v) == abs).then_some(v)
}

/// Exact powers of ten as doubles (10²² is the last one a double holds exactly).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// [`real`] for spellings of at most 15 significant digits whose value is `m × 10^e` with
/// |e| ≤ 22: one exact multiplication or division (both operands are exact doubles, so the one
/// rounding is the correct one). None: anything else, which [`real`] checks the slow way.
fn short(text: &[u8]) -> Option<f64> {
    let (m, digits, kk) = layout(text)?;
    if digits > 15 {
        return None;
    }
    let e = kk - digits as i32;
    let m = m as f64;
    match e {
        0..=22 => Some(m * POW10[e as usize]),
        -22..=-1 => Some(m / POW10[-e as usize]),
        _ => None,
    }
}

/// The digits of `text` as a number `m` (no trailing zero), how many there are, and `kk`
/// (`10^(kk-1) ≤ value < 10^kk`) — when `text` is laid out exactly as `ryu` lays out a value
/// with these digits: `12300.0` and `12.34` up to 16 integer digits, `0.001234` down to four
/// zeros after the point, `1e30`, `1.234e-7` beyond. None for zero, anything else, and more than
/// 17 digits.
fn layout(text: &[u8]) -> Option<(u64, usize, i32)> {
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let point = mantissa.iter().position(|&b| b == b'.');
    let (int, frac) = match point {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &b""[..]),
    };
    if !int.iter().chain(frac).all(u8::is_ascii_digit) || int.is_empty() {
        return None;
    }
    if let Some(exp) = exponent {
        // `D` or `D.DDD` (no trailing zero), then the exponent: `-` or not, no leading zero.
        let negative = exp.first() == Some(&b'-');
        let exp_digits = &exp[usize::from(negative)..];
        let exp_ok = !exp_digits.is_empty()
            && exp_digits.len() <= 3
            && exp_digits[0] != b'0'
            && exp_digits.iter().all(u8::is_ascii_digit);
        let frac_ok = match point {
            Some(_) => !frac.is_empty() && frac.last() != Some(&b'0'),
            None => true,
        };
        if int.len() != 1 || int[0] == b'0' || !exp_ok || !frac_ok {
            return None;
        }
        let mut e: i32 = 0;
        for &d in exp_digits {
            e = e * 10 + i32::from(d - b'0');
        }
        let kk = if negative { -e } else { e } + 1;
        // Laid out with an exponent only outside -5 < kk ≤ 16.
        if -5 < kk && kk <= 16 {
            return None;
        }
        let (m, n) = digits_of(int, frac)?;
        return Some((m, n, kk));
    }
    point?;
    if int[0] == b'0' {
        // `0.000ddd`: at most four zeros after the point, no trailing zero; not `0.0`.
        if int.len() != 1 || frac.last().is_none_or(|&d| d == b'0') {
            return None;
        }
        let zeros = frac.iter().take_while(|&&d| d == b'0').count();
        if zeros > 4 {
            return None;
        }
        let (m, n) = digits_of(&[], &frac[zeros..])?;
        return Some((m, n, -(zeros as i32)));
    }
    let kk = int.len() as i32;
    if kk > 16 {
        return None;
    }
    if frac == b"0" {
        // `12300.0`: the integer's trailing zeros are not digits of the spelling.
        let significant = int.len() - int.iter().rev().take_while(|&&d| d == b'0').count();
        let (m, n) = digits_of(&int[..significant], &[])?;
        return Some((m, n, kk));
    }
    if frac.is_empty() || frac.last() == Some(&b'0') {
        return None;
    }
    let (m, n) = digits_of(int, frac)?;
    Some((m, n, kk))
}

/// The decimal digits `a` then `b` as a number, and how many there are (at most 17).
fn digits_of(a: &[u8], b: &[u8]) -> Option<(u64, usize)> {
    let n = a.len() + b.len();
    if n > 17 {
        return None;
    }
    let m = a
        .iter()
        .chain(b)
        .fold(0u64, |m, &d| m * 10 + u64::from(d - b'0'));
    Some((m, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(text: &str) {
        let (fast, slow) = (real(text), formatted_again(text));
        assert_eq!(
            fast.map(f64::to_bits),
            slow.map(f64::to_bits),
            "{text}: {fast:?} {slow:?}"
        );
    }

    #[test]
    fn the_short_path_answers_as_formatting_again_does() {
        for text in [
            "0.0",
            "1.0",
            "10.0",
            "12300.0",
            "12.34",
            "0.5",
            "0.001234",
            "0.00001234",
            "0.000001234",
            "1e30",
            "1.234e-7",
            "1e-5",
            "1e-6",
            "1.0e5",
            "1e5",
            "100000.0",
            "1E5",
            "01.5",
            "1.50",
            "1.5e020",
            "1.5e+20",
            "1.5e20",
            "15e19",
            "0.10",
            "00.1",
            "1234567890123456.0",
            "12345678901234567.0",
            "1e16",
            "1e15",
            "9999999999999998.0",
            "0.1",
            "0.2",
            "0.3",
            "0.30000000000000004",
            "123456789012345.6",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
            "5e-324",
            "4.9e-324",
            "1e-22",
            "1e-23",
            "1e22",
            "1e23",
            "123.456e7",
            "1.",
            ".5",
            "1.e5",
            "0.",
            "-1.0",
            "1.0e",
            "1e-",
            "1e-05",
            "NaN",
            "inf",
            "9007199254740993.0",
            "0.00000",
            "0.0001",
            "0.00010",
            "3.14159265358979",
        ] {
            same(text);
        }
        // The short path itself answers for these (not only the slow one).
        for (text, v) in [
            ("12.34", 12.34),
            ("12300.0", 12300.0),
            ("0.001234", 0.001234),
        ] {
            assert_eq!(short(text.as_bytes()), Some(v), "{text}");
        }
        assert_eq!(short(b"1.234e-7"), Some(1.234e-7));
        assert_eq!(short(b"1e30"), None);
        assert_eq!(short(b"0.30000000000000004"), None);
    }

    #[test]
    fn every_canonical_spelling_is_read_back() {
        // Doubles of every magnitude, and short decimals: each canonical spelling, and the
        // same digits laid out in other ways.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..200_000 {
            let v = match i % 3 {
                0 => f64::from_bits(next() >> 1),
                1 => (next() % 1_000_000_000) as f64 / 10f64.powi((next() % 30) as i32),
                _ => (next() % 10_000) as f64 * 10f64.powi((next() % 40) as i32 - 20),
            };
            if !v.is_finite() {
                continue;
            }
            let text = ryu::Buffer::new().format_finite(v.abs()).to_string();
            assert_eq!(
                real(&text).map(f64::to_bits),
                Some(v.abs().to_bits()),
                "{text}"
            );
            for other in [
                format!("{text}0"),
                format!("{}", v.abs()),
                format!("{:e}", v.abs()),
                text.replace(".0", ""),
            ] {
                same(&other);
            }
        }
    }
}
