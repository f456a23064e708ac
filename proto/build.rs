//! Generates the NRI messages and ttrpc services from `nri/api.proto` with
//! the pure-Rust protobuf parser (no protoc needed).

use std::{fs, path::Path};

use ttrpc_codegen::{Codegen, Customize, ProtobufCustomize};

const GENERATED: [&str; 2] = ["api.rs", "api_ttrpc.rs"];

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    Codegen::new()
        .out_dir(&out_dir)
        .include("nri")
        .input("nri/api.proto")
        .rust_protobuf()
        .rust_protobuf_customize(ProtobufCustomize::default().gen_mod_rs(false))
        .customize(Customize {
            async_all: true,
            ..Default::default()
        })
        .run()
        .expect("generating NRI protocol code from nri/api.proto");
    for file in GENERATED {
        strip_inner_attributes(&Path::new(&out_dir).join(file));
    }
    println!("cargo:rerun-if-changed=nri/api.proto");
    println!("cargo:rerun-if-changed=build.rs");
}

/// `include!` accepts no inner attributes or inner doc comments; the lints
/// they set are applied on the including module instead.
fn strip_inner_attributes(path: &Path) {
    let code = fs::read_to_string(path).expect("reading generated code");
    let kept: Vec<&str> = code
        .lines()
        .filter(|line| !line.starts_with("#![") && !line.starts_with("//!"))
        .collect();
    fs::write(path, kept.join("\n")).expect("writing generated code");
}
