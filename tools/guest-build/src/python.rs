//! Python guests: componentize-py (from PyPI, pinned) generates the
//! bindings of the example's world and bundles CPython with the example
//! into a component. The component imports WASI (CPython reads its
//! environment at start); nri-wasm links it with nothing behind it.

use std::{path::Path, process::Command};

use anyhow::Context;

use crate::{example::Example, run_tool, toolchain::python_with, BuiltGuest};

const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Builds the Python example into `out_dir`.
pub fn build(
    example: &Example,
    wit_dir: &Path,
    work_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    let python = python_with(
        &work_dir.join("../../toolchains/python"),
        &[COMPONENTIZE_PY],
    )?;
    // Built from a copy, so the interpreter's caches stay out of the
    // source tree.
    let source = example.single_source("py")?;
    let copy = work_dir.join("src");
    std::fs::create_dir_all(&copy)?;
    std::fs::copy(
        &source,
        copy.join(source.file_name().context("a file name")?),
    )?;
    let module = source
        .file_stem()
        .and_then(|s| s.to_str())
        .context("a module name")?;
    let path = example.output(out_dir);
    let componentize_py = python.with_file_name("componentize-py");
    run_tool(
        Command::new(componentize_py)
            .arg("-d")
            .arg(wit_dir)
            .args(["-w", &example.world, "componentize", module, "-p"])
            .arg(&copy)
            .arg("-o")
            .arg(&path)
            .current_dir(work_dir),
        "componentize-py",
        example,
    )?;
    Ok(BuiltGuest {
        id: example.id(),
        path,
    })
}
