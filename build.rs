//! Compiles `csrc/atof340.c` and `csrc/atof343.c`, models of the decimal parsers of SQLite 3.40
//! (one per kind of `long double`) and 3.43-3.51, used by `src/dump/real.rs` to decide whether
//! a REAL literal reads back exactly.

fn main() {
    println!("cargo:rerun-if-changed=csrc/atof340.c");
    println!("cargo:rerun-if-changed=csrc/atof340_calc.h");
    println!("cargo:rerun-if-changed=csrc/atof343.c");
    cc::Build::new()
        .file("csrc/atof340.c")
        .file("csrc/atof343.c")
        // No fused multiply-adds or other value-changing optimisations: each operation must
        // round exactly as in the modelled sqlite3 binaries (gcc contracts by default on aarch64).
        .flag_if_supported("-ffp-contract=off")
        .flag_if_supported("-fexcess-precision=standard")
        .compile("atof340");
}
