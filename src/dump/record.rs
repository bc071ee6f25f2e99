//! SQLite's record format, as far as an incremental snapshot needs it: the key columns of an
//! index b-tree cell (a WITHOUT ROWID table's row), written as the dump writes them.

use super::btree::varint;
use super::literal::write_cell;
use super::stmt::{Cell, Encoding};

/// The key columns of a record (the first `n` fields) as SQL literals each ended by a NUL; None
/// when they do not all lie in `payload` (the rest is on overflow pages).
pub fn record_key(payload: &[u8], n: usize, encoding: Encoding) -> Option<Vec<u8>> {
    let (header, mut at) = varint(payload, 0).ok()?;
    let header = usize::try_from(header).ok()?;
    let mut body = header;
    let mut out = Vec::new();
    for _ in 0..n {
        if at >= header {
            return None;
        }
        let (t, len) = varint(payload, at).ok()?;
        at += len;
        let size = match t {
            0 | 8 | 9 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return None,
            t => ((t - 12) / 2) as usize,
        };
        let bytes = payload.get(body..body + size)?;
        body += size;
        let cell = match t {
            0 => Cell::Null,
            1..=6 => {
                let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
                for &b in bytes {
                    v = (v << 8) | i64::from(b);
                }
                Cell::Integer(v)
            }
            7 => Cell::Real(f64::from_bits(u64::from_be_bytes(bytes.try_into().ok()?))),
            8 => Cell::Integer(0),
            9 => Cell::Integer(1),
            t if t % 2 == 0 => Cell::Blob(bytes),
            _ => match encoding {
                Encoding::Utf8 => Cell::Text(bytes),
                Encoding::Utf16Le => Cell::Text16 {
                    bytes,
                    big_endian: false,
                },
                Encoding::Utf16Be => Cell::Text16 {
                    bytes,
                    big_endian: true,
                },
            },
        };
        write_cell(&mut out, cell);
        out.push(0);
    }
    Some(out)
}
