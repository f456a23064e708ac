//! C++ guests: bindings from wit-bindgen's C++ generator (C++23:
//! `std::expected`), compiled with the example by `zig c++` (Debian's
//! libc++ 14 lacks `std::expected`) for wasm32-wasi as a reactor. libc++
//! imports WASI preview 1, which the reactor adapter turns into WASI 0.2:
//! nri-wasm links it with nothing behind it.

use std::path::Path;

use crate::{
    bindings::{generate, BindingLanguage},
    component_of,
    example::Example,
    run_tool,
    zig::zig,
    BuiltGuest,
};

/// Builds the C++ example into `out_dir`, with its bindings and core
/// module in `work_dir`.
pub fn build(
    example: &Example,
    wit_dir: &Path,
    work_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    let zig = zig(work_dir)?;
    let gen = work_dir.join("gen");
    generate(wit_dir, &example.world, BindingLanguage::Cpp, &gen)?;
    let world = example.world.replace('-', "_");
    let core = work_dir.join("core.wasm");
    run_tool(
        zig()
            .args([
                "c++",
                "-target",
                "wasm32-wasi",
                "-mexec-model=reactor",
                "-std=c++23",
            ])
            .args([
                "-Os",
                "-fno-exceptions",
                "-Wall",
                "-Wl,--no-entry",
                "-Wl,--strip-debug",
            ])
            .arg("-I")
            .arg(&gen)
            .arg("-o")
            .arg(&core)
            .arg(gen.join(format!("{world}.cpp")))
            .args(example.sources("cpp")?)
            .arg(gen.join(format!("{world}_component_type.o")))
            .current_dir(work_dir),
        "zig c++",
        example,
    )?;
    component_of(example, &core, out_dir)
}
