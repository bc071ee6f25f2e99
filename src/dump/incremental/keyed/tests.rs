//! Unit tests of reading a WITHOUT ROWID table in part by key (`keyed.rs`), in their own file so
//! that the code stays short enough to read whole.

use super::*;

fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for p in parts {
        k.extend_from_slice(p.as_bytes());
        k.push(0);
    }
    k
}

#[test]
fn interior_cells_mark_only_the_rows_that_differ() {
    let page = |pgno, kind, hash| Page {
        pgno,
        kind,
        hash,
        lo: 0,
        hi: 0,
    };
    let (a, b, c, d) = (key(&["1"]), key(&["5"]), key(&["9"]), key(&["7"]));
    // Page 2 (interior) held rows 1, 5 and 9; now row 5 moved to new interior page 4
    // unchanged, row 9 changed, and row 7 came up from leaf 3, which changed.
    let old: PageList = [page(2, Kind::Interior, 10), page(3, Kind::IndexLeaf, 20)]
        .into_iter()
        .collect();
    let new: PageList = [
        page(2, Kind::Interior, 11),
        page(3, Kind::IndexLeaf, 21),
        page(4, Kind::Interior, 30),
    ]
    .into_iter()
    .collect();
    let mut old_keys = PageKeys::default();
    let cells = [(100, &a[..]), (500, &b[..]), (900, &c[..])];
    old_keys.push_interior(2, &a, &c, cells.into_iter());
    old_keys.push(3, &key(&["6"]), &key(&["8"]));
    let mut new_keys = PageKeys::default();
    new_keys.push_interior(2, &a, &d, [(100, &a[..]), (700, &d[..])].into_iter());
    new_keys.push(3, &key(&["6"]), &key(&["8"]));
    new_keys.push_interior(4, &b, &c, [(500, &b[..]), (901, &c[..])].into_iter());
    let mut got = changed_keys(&old, &new, &old_keys, &new_keys);
    got.sort();
    let point = |k: &Vec<u8>| (k.clone(), k.clone());
    let mut want = vec![
        (key(&["6"]), key(&["8"])),
        (key(&["6"]), key(&["8"])),
        point(&c),
        point(&c),
        point(&d),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn placed_keys_go_on_counting_past_their_budget() {
    let mut placed = PlacedKeys {
        count: 0,
        keys: Some(KeyList::default()),
    };
    placed.push(&[b'k'; 1000]);
    assert_eq!(placed.keys.as_ref().map(KeyList::len), Some(1));
    for _ in 0..2000 {
        placed.push(&[b'k'; 1000]); // ~2 MB of keys for 2,001 chunks: over the budget
    }
    assert!(placed.keys.is_none());
    assert_eq!(placed.len(), 2001);
}

#[test]
fn plain_values_decode_only_plain_spellings() {
    let v = plain_values(&key(&["NULL", "-12", "'it''s'", "X'00fF'", "''"])).unwrap();
    assert_eq!(
        v,
        vec![
            Value::Null,
            Value::Integer(-12),
            Value::Text("it's".into()),
            Value::Blob(vec![0, 255]),
            Value::Text(String::new()),
        ]
    );
    for other in [
        "1.5",
        "1e999",
        "'a'||char(13)||'b'",
        "CAST(X'61' AS TEXT)",
        "99999999999999999999",
        "'a'b'",
        "X'0'",
        "-",
    ] {
        assert_eq!(plain_values(&key(&[other])), None, "{other}");
    }
}

#[test]
fn bound_comparison_agrees_with_sql_text() {
    let conn = Connection::open_in_memory().unwrap();
    let lits = [
        "NULL",
        "-5",
        "0",
        "7",
        "'A'",
        "'a'",
        "'b'",
        "'it''s'",
        "X'00'",
        "X'ff'",
        "2.5",
        "'a'||char(13)",
        "''",
        "'é'",
        "'z'",
        "'\u{1F600}'",
        "'\u{FFFD}'",
        "-9223372036854775808",
        "9223372036854775807",
    ];
    let collations = [
        String::new(),
        " COLLATE NOCASE".to_string(),
        " COLLATE \"BINARY\"".to_string(),
    ];
    for (colls, encoding) in collations
        .iter()
        .flat_map(|c| [(c, Encoding::Utf8), (c, Encoding::Utf16Le)])
    {
        let order = KeyOrder::new(&conn, vec![colls.clone()], encoding);
        assert_eq!(
            order.here,
            encoding == Encoding::Utf8 && !colls.contains("NOCASE")
        );
        for a in lits {
            for b in lits {
                let (ka, kb) = (key(&[a]), key(&[b]));
                let got = order.le(&ka, &kb).ok();
                let sql = format!(
                    "SELECT {} <= {}",
                    literals(&ka, Some(&order.collations)).unwrap(),
                    literals(&kb, None).unwrap()
                );
                // NULL <= x is NULL: an error both ways (key columns are NOT NULL).
                let want: Option<bool> = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
                assert_eq!(got, want, "{a} <= {b} with {:?}", order.collations);
            }
        }
    }
    let both = vec![String::new(), " COLLATE NOCASE".into()];
    let order = KeyOrder::new(&conn, both, Encoding::Utf8);
    assert!(order.le(&key(&["1", "'B'"]), &key(&["1", "'b'"])).unwrap());
    assert!(!order.le(&key(&["2", "'a'"]), &key(&["1", "'b'"])).unwrap());
}
