//! Compiles `csrc/atof340.c`, a model of SQLite 3.40's decimal parser used by
//! `src/dump/real.rs` to decide whether a REAL literal reads back exactly.

fn main() {
    println!("cargo:rerun-if-changed=csrc/atof340.c");
    cc::Build::new().file("csrc/atof340.c").compile("atof340");
}
