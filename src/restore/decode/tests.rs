use super::*;

fn decode(sql: &[u8]) -> Batch {
    let mut batch = Batch::default();
    Decoder::default().decode(sql, &mut batch);
    batch
}

fn values(b: &Batch) -> Vec<String> {
    b.vals
        .iter()
        .map(|v| match *v {
            Val::Text(s, e) => format!("T{:?}", String::from_utf8_lossy(&b.bytes[s..e])),
            Val::Blob(s, e) => format!("B{:?}", &b.bytes[s..e]),
            v => format!("{v:?}"),
        })
        .collect()
}

#[test]
fn both_row_formats_decode_to_bound_rows() {
    let b = decode(
        b"INSERT INTO \"t\"(rowid,\"a\") VALUES(1,'it''s');\n\
          INSERT INTO \"t\"(rowid,\"a\") VALUES\n(2,-0.0),\n(-9223372036854775808,X'00aB');\n",
    );
    assert_eq!(b.stmts.len(), 1);
    assert_eq!(b.stmts[0].1, b"INSERT INTO \"t\"(rowid,\"a\") VALUES(?,?)");
    assert_eq!(b.ops.len(), 3);
    assert!(b.ops.iter().all(|o| matches!(o, Op::Row { sql: None, .. })));
    assert_eq!(
        values(&b),
        [
            "Int(1)",
            "T\"it's\"",
            "Int(2)",
            "Real(-0.0)",
            "Int(-9223372036854775808)",
            "B[0, 171]"
        ]
    );
}

#[test]
fn every_dump_spelling_decodes() {
    let b = decode(
        b"INSERT INTO \"t\" VALUES(NULL,0.1,1e999,-1e999,ieee754(1,-1074),\
          ('a'||char(0,13))||'b',char(0),'caf\xc3\xa9','\xff');\n",
    );
    assert_eq!(
        values(&b),
        [
            "Null",
            "Real(0.1)",
            "Real(inf)",
            "Real(-inf)",
            "Real(5e-324)",
            "T\"a\\0\\rb\"",
            "T\"\\0\"",
            "T\"café\"",
            "T\"\u{fffd}\""
        ]
    );
    // Not UTF-8: the row keeps its SQL, for a UTF-16 database.
    assert!(matches!(b.ops[0], Op::Row { sql: Some(_), .. }));
}

/// Text with many CR/NUL bytes (`replace()`, nested for NUL) decodes to bound bytes, the same as
/// the `char()` spelling of the same text; malformed or foreign `replace()` calls stay SQL.
#[test]
fn replace_spellings_decode() {
    let b = decode(
        b"INSERT INTO \"t\" VALUES(replace('a\\r\nb\\r','\\r',char(13)),\
          replace(replace('\\0x''\\r\\R','\\0',char(0)),'\\r',char(13)),\
          'a'||char(13)||'\nb'||char(13));\n",
    );
    assert_eq!(
        values(&b),
        ["T\"a\\r\\nb\\r\"", "T\"\\0x'\\r\\\\R\"", "T\"a\\r\\nb\\r\""]
    );
    assert!(matches!(b.ops[0], Op::Row { sql: None, .. }));
    for row in [
        &b"replace('a','\\r',char(200))"[..],
        b"replace('a','',char(13))",
        b"replace('a','\\r',char(13))||x",
        b"replace(lower('a'),'\\r',char(13))",
        b"replace('a','\\r',char(13),1)",
    ] {
        let mut sql = b"INSERT INTO t VALUES(1,".to_vec();
        sql.extend_from_slice(row);
        sql.extend_from_slice(b");\n");
        let b = decode(&sql);
        assert!(
            matches!(b.ops[0], Op::Sql(..)),
            "{:?} was decoded",
            String::from_utf8_lossy(row)
        );
    }
}

#[test]
fn unknown_forms_stay_sql() {
    for row in [
        &b"1.50"[..],
        b"1e5",
        b"abs(1)",
        b"CAST(X'41' AS TEXT)",
        b"char(200)",
        b"9223372036854775808",
        b"'a' ",
        b"(1)",
        b"0x10",
    ] {
        let mut sql = b"INSERT INTO t VALUES(1,".to_vec();
        sql.extend_from_slice(row);
        sql.extend_from_slice(b");\n");
        let b = decode(&sql);
        let Op::Sql(s, e) = b.ops[0] else {
            panic!("{:?} was decoded", String::from_utf8_lossy(row));
        };
        assert_eq!(&b.bytes[s..e], &sql[..sql.len() - 1]);
    }
    // Not a row statement: the rest of the piece is SQL, as it is.
    let sql = b"INSERT INTO t VALUES(1);\nINSERT INTO t VALUES(2) ON CONFLICT DO NOTHING;\n\
                INSERT INTO t VALUES(3);\n";
    let b = decode(sql);
    assert_eq!(b.ops.len(), 2);
    let Op::Sql(s, e) = b.ops[1] else { panic!() };
    assert_eq!(&b.bytes[s..e], &sql[25..]);
    // A comment inside, a CR/LF anywhere, a NUL: the whole statement or piece is SQL.
    for sql in [
        &b"INSERT INTO t VALUES(1 /* x */);\n"[..],
        b"INSERT INTO t VALUES(1);\r\n",
        b"INSERT INTO t VALUES(1);\n\0",
    ] {
        let b = decode(sql);
        assert!(matches!(b.ops[..], [Op::Sql(0, _)]), "{sql:?}");
    }
}
