//! C guests: bindings from wit-bindgen's C generator, compiled by Debian's
//! clang for wasm32-wasi against wasi-libc as a reactor, then made a
//! component. Without stdio the component imports nothing but `log`.

use std::{path::Path, process::Command};

use crate::{
    bindings::{generate, BindingLanguage},
    component_of,
    example::Example,
    run_tool,
    toolchain::ensure_debian_packages,
    BuiltGuest,
};

/// clang 14 with the wasm32 linker, libc and compiler runtime.
const PACKAGES: [&str; 4] = ["clang", "lld", "wasi-libc", "libclang-rt-14-dev-wasm32"];

/// Builds the C example into `out_dir`, with its bindings and core module
/// in `work_dir`.
pub fn build(
    example: &Example,
    wit_dir: &Path,
    work_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    ensure_debian_packages(&PACKAGES)?;
    let gen = work_dir.join("gen");
    generate(wit_dir, &example.world, BindingLanguage::C, &gen)?;
    let world = example.world.replace('-', "_");
    let sources = example.sources("c")?;
    let core = work_dir.join("core.wasm");
    run_tool(
        Command::new("clang")
            .args(["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall"])
            .args(["-Wno-unused-parameter", "-mexec-model=reactor"])
            .args(["-Wl,--no-entry", "-Wl,--strip-debug", "-I"])
            .arg(&gen)
            .arg("-o")
            .arg(&core)
            .arg(gen.join(format!("{world}.c")))
            .args(&sources)
            .arg(gen.join(format!("{world}_component_type.o"))),
        "clang",
        example,
    )?;
    component_of(example, &core, out_dir)
}
