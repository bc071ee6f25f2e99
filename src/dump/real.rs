//! Exact SQL spelling of REAL values (placeholder; being written).

/// Append an SQL expression that evaluates to exactly `v` (same bits) in sqlite3 >= 3.40.
pub fn write_real(out: &mut Vec<u8>, v: f64) {
    let mut b = ryu::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Placeholder until the real module lands.
pub fn register_sql_functions(_conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    Ok(())
}
