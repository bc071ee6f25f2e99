use super::*;
use crate::dump::literal::write_text16;

fn lit(t: &[u8]) -> String {
    let mut out = Vec::new();
    write_value_text(&mut out, t);
    String::from_utf8(out).unwrap()
}

/// Runs of `\r` joined by `x`: `n` char() pieces in the old spelling.
fn runs(n: usize, sep: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    for _ in 0..n {
        t.extend_from_slice(sep);
        t.push(b'\r');
    }
    t
}

#[test]
fn few_pieces_keep_the_char_spelling() {
    assert_eq!(lit(b"a\r\nb"), "'a'||char(13)||'\nb'");
    let eight = runs(8, b"x");
    assert_eq!(lit(&eight).matches("char(13)").count(), 8);
    assert_eq!(lit(b"plain 'q'"), "'plain ''q'''");
}

#[test]
fn many_pieces_become_one_replace() {
    let nine = runs(9, b"x\n");
    assert_eq!(
        lit(&nine),
        "replace('x\n\\rx\n\\rx\n\\rx\n\\rx\n\\rx\n\\rx\n\\rx\n\\rx\n\\r','\\r',char(13))"
    );
    // One run of 1000 CRs is 10 pieces.
    let crs = vec![b'\r'; 1000];
    assert_eq!(
        lit(&crs),
        format!("replace('{}','\\r',char(13))", "\\r".repeat(1000))
    );
    let mut both = runs(5, b"a");
    both.extend_from_slice(b"\0'\0b\0c\0d\0");
    assert_eq!(
        lit(&both),
        "replace(replace('a\\ra\\ra\\ra\\ra\\r\\0''\\0b\\0c\\0d\\0','\\0',char(0)),'\\r',char(13))"
    );
}

#[test]
fn tokens_that_occur_in_the_text_are_skipped() {
    let mut t = b"\\r \\R \\0".to_vec();
    t.extend(runs(9, b"y"));
    t.extend_from_slice(b"\0");
    let l = lit(&t);
    assert!(l.ends_with(",'\\z',char(0)),'\\c',char(13))"), "{l}");
    assert_eq!(decode(l.as_bytes()).unwrap(), t);
    // Every candidate taken: the char() spelling.
    let mut full = b"\\r\\R\\c".to_vec();
    full.extend(runs(9, b"y"));
    assert!(lit(&full).starts_with("'\\r\\R\\cy'||char(13)"));
}

/// Every spelling decodes to its bytes, for values built to trip a token rule: backslashes next
/// to CR and NUL, tokens' letters after them, quotes, CR/NUL first and last, only CRs.
#[test]
fn every_value_decodes_to_itself() {
    let parts: [&[u8]; 9] = [b"\r", b"\0", b"\\", b"r", b"0", b"'", b"\n", b"\\\\", b"z"];
    let mut seed = 7u64;
    for len in [0, 1, 2, 5, 30, 200, 2000] {
        for _ in 0..60 {
            let mut t = Vec::new();
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t.extend_from_slice(parts[(seed >> 33) as usize % parts.len()]);
            }
            let l = lit(&t);
            assert_eq!(decode(l.as_bytes()).as_deref(), Some(&t[..]), "{l}");
        }
    }
}

#[test]
fn utf16_text_takes_the_same_spelling() {
    let units: Vec<u16> = "a\r\n".encode_utf16().cycle().take(30).collect();
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
    let mut out = Vec::new();
    write_text16(&mut out, &bytes, false);
    assert_eq!(out, lit(&"a\r\n".repeat(10).into_bytes()).into_bytes());
    assert!(out.starts_with(b"replace('a\\r\n"));
}

#[test]
fn old_spellings_are_respelled_once() {
    let mut old = Vec::new();
    let t = runs(20, b"line\n");
    write_text(&mut old, &t);
    let now = respelled(&old).unwrap();
    assert_eq!(now, lit(&t).into_bytes());
    assert_eq!(respelled(&now), None);
    // Few pieces, other literals, other spellings of the same bytes: left as they are.
    assert_eq!(respelled(b"'a'||char(13)||'b'"), None);
    assert_eq!(respelled(b"'char(13)'"), None);
    assert_eq!(respelled(b"X'0d'"), None);
    let other = format!("'x'||char(13,13)||{}", "'y'||char(13)||".repeat(9)) + "''";
    assert_eq!(respelled(other.as_bytes()), None);
}

#[test]
fn replace_is_decoded_as_sqlite_computes_it() {
    assert_eq!(decode(b"replace('a\\rb','\\r',char(13))").unwrap(), b"a\rb");
    assert_eq!(decode(b"replace('aaa','aa',char(9))").unwrap(), b"\ta");
    assert_eq!(
        decode(b"'x'||replace('\\r','\\r',char(13))").unwrap(),
        b"x\r"
    );
    for bad in [
        &b"replace('a','',char(13))"[..],
        b"replace('a','\\r',char(200))",
        b"replace('a','\\r',char(13)",
        b"replace('a',char(1),char(13))",
        b"replace(x,'\\r',char(13))",
    ] {
        assert_eq!(decode(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}
