//! One value literal of a row, in the spellings the dump writes, decoded into a [`Val`]:
//! `NULL`, integers, canonical reals, `ieee754(M,E)`, `X'..'`, quoted text joined with
//! `char(…)`, and `replace('…','\r',char(13))` (nested, for NUL too: see
//! [`crate::dump::textlit`]). Anything else is None, and its row stays SQL for SQLite to run.

use super::{Batch, Val};
use crate::dump::literal::{group_end, quoted_end};
use crate::dump::textlit::decode_replace;

/// A value literal decoded: the value and whether its text pieces are all valid UTF-8. None
/// for any spelling not modelled exactly.
pub(super) fn value(lit: &[u8], batch: &mut Batch) -> Option<(Val, bool)> {
    match *lit.first()? {
        b'N' => (lit == b"NULL").then_some((Val::Null, true)),
        b'0'..=b'9' | b'-' => number(lit).map(|v| (v, true)),
        b'X' | b'x' if lit.get(1) == Some(&b'\'') => blob(lit, batch).map(|v| (v, true)),
        b'i' => ieee754(lit).map(|v| (v, true)),
        b'\'' | b'c' | b'(' | b'r' => {
            let start = batch.bytes.len();
            match text(lit, &mut batch.bytes) {
                Some(utf8) => Some((Val::Text(start, batch.bytes.len()), utf8)),
                None => {
                    batch.bytes.truncate(start);
                    None
                }
            }
        }
        _ => None,
    }
}

/// An integer (`-?[0-9]+`, within i64) or a real as the dump spells it: the shortest
/// round-trip digits (ryu), `1e999` for infinity, with an optional `-`.
pub(super) fn number(lit: &[u8]) -> Option<Val> {
    let (neg, digits) = match lit.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, lit),
    };
    if digits.is_empty() || !digits[0].is_ascii_digit() {
        return None;
    }
    let s = std::str::from_utf8(lit).ok()?;
    if digits.iter().all(u8::is_ascii_digit) {
        return s.parse::<i64>().ok().map(Val::Int);
    }
    let abs = &s[usize::from(neg)..];
    let v: f64 = if abs == "1e999" {
        f64::INFINITY
    } else {
        // Only the canonical spelling: that is what SQLite reads back bit for bit (tested).
        crate::restore::canonical::real(abs)?
    };
    Some(Val::Real(if neg { -v } else { v }))
}

/// `X'hex'` (an even number of hex digits).
pub(super) fn blob(lit: &[u8], batch: &mut Batch) -> Option<Val> {
    let hex = lit.get(2..lit.len() - 1)?;
    if lit.last() != Some(&b'\'') || !hex.len().is_multiple_of(2) {
        return None;
    }
    let start = batch.bytes.len();
    batch.bytes.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        let (h, l) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        if (h | l) > 15 {
            batch.bytes.truncate(start);
            return None;
        }
        batch.bytes.push(h << 4 | l);
    }
    Some(Val::Blob(start, batch.bytes.len()))
}

/// Hex digit values; 255 for anything else.
const NIBBLE: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// `ieee754(M,E)` with integer M and E: what our `ieee754` SQL function returns.
fn ieee754(lit: &[u8]) -> Option<Val> {
    let v = crate::dump::real::ieee754_literal(std::str::from_utf8(lit).ok()?)?;
    Some(if v.is_nan() { Val::Null } else { Val::Real(v) })
}

/// Text: `'…'` pieces (`''` for a quote), `char(c,…)` with ASCII codes and `replace(…)`, joined
/// by `||`, in parentheses too; appended to `out`. Returns whether every piece is valid UTF-8
/// (a `replace()` is one piece: SQLite converts its result as a whole).
fn text(lit: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    let mut utf8 = true;
    let mut p = 0;
    loop {
        match *lit.get(p)? {
            b'\'' => {
                let end = quoted_end(lit, p + 1, b'\'')?;
                let from = out.len();
                let mut inner = &lit[p + 1..end - 1];
                while let Some(i) = inner.iter().position(|&b| b == b'\'') {
                    out.extend_from_slice(&inner[..=i]);
                    inner = &inner[i + 2..];
                }
                out.extend_from_slice(inner);
                utf8 &= std::str::from_utf8(&out[from..]).is_ok();
                p = end;
            }
            b'c' => {
                let args = lit[p..].strip_prefix(b"char(")?;
                let close = args.iter().position(|&b| b == b')')?;
                for code in args[..close].split(|&b| b == b',') {
                    if code.is_empty() || code.len() > 3 || !code.iter().all(u8::is_ascii_digit) {
                        return None;
                    }
                    let c: u8 = std::str::from_utf8(code).ok()?.parse().ok()?;
                    if !c.is_ascii() {
                        return None; // char(128…) is a UTF-8 sequence: not modelled
                    }
                    out.push(c);
                }
                p += 5 + close + 1;
            }
            b'r' => {
                let (bytes, end) = decode_replace(lit, p)?;
                utf8 &= std::str::from_utf8(&bytes).is_ok();
                out.extend_from_slice(&bytes);
                p = end;
            }
            b'(' => {
                let close = group_end(lit, p)?;
                utf8 &= text(&lit[p + 1..close], out)?;
                p = close + 1;
            }
            _ => return None,
        }
        if p == lit.len() {
            return Some(utf8);
        }
        p += 2;
        if lit.get(p - 2..p)? != b"||" {
            return None;
        }
    }
}
