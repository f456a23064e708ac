//! Zig guests: the C bindings of wit-bindgen, translated to a Zig module by
//! `zig translate-c` (Zig 0.17 has no `@cImport`), compiled with the
//! example by Zig for wasm32-wasi as a reactor, then made a component. Zig
//! comes from PyPI (`ziglang`), pinned.

use std::{path::Path, process::Command};

use anyhow::{bail, Context};

use crate::{
    bindings::{generate, BindingLanguage},
    component_of,
    example::Example,
    run_tool,
    toolchain::python_with,
    BuiltGuest,
};

const ZIG: &str = "ziglang==0.17.1";

/// A maker of `zig` commands, Zig installed when missing.
pub(crate) fn zig(work_dir: &Path) -> anyhow::Result<impl Fn() -> Command> {
    let python = python_with(&work_dir.join("../../toolchains/python"), &[ZIG])?;
    Ok(move || {
        let mut command = Command::new(&python);
        command.args(["-m", "ziglang"]);
        command
    })
}

/// Builds the Zig example into `out_dir`, with its bindings and core
/// module in `work_dir`.
pub fn build(
    example: &Example,
    wit_dir: &Path,
    work_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    let zig = zig(work_dir)?;
    let gen = work_dir.join("gen");
    generate(wit_dir, &example.world, BindingLanguage::C, &gen)?;
    let world = example.world.replace('-', "_");
    let header = gen.join(format!("{world}.h"));
    let translated = zig()
        .args(["translate-c", "-target", "wasm32-wasi", "-lc"])
        .arg(&header)
        .output()
        .context("running zig translate-c")?;
    if !translated.status.success() {
        bail!(
            "zig translate-c failed: {}",
            String::from_utf8_lossy(&translated.stderr)
        );
    }
    let bindings = gen.join(format!("{world}_h.zig"));
    std::fs::write(&bindings, translated.stdout)?;
    let root = example.single_source("zig")?;
    let core = work_dir.join("core.wasm");
    run_tool(
        zig()
            .args([
                "build-exe",
                "-target",
                "wasm32-wasi",
                "-mexec-model=reactor",
            ])
            .args(["-fno-entry", "-rdynamic", "-O", "ReleaseSmall", "-lc", "-I"])
            .arg(&gen)
            .args(["--dep", "bindings"])
            .arg(format!("-Mroot={}", root.display()))
            .arg(gen.join(format!("{world}.c")))
            .arg(gen.join(format!("{world}_component_type.o")))
            .arg(format!("-Mbindings={}", bindings.display()))
            .arg(format!("-femit-bin={}", core.display()))
            .current_dir(work_dir),
        "zig build-exe",
        example,
    )?;
    component_of(example, &core, out_dir)
}
