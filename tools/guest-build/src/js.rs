//! JavaScript guests: componentize-js (from npm, pinned) embeds the
//! example in the StarlingMonkey engine, snapshotted after its top level
//! ran, as a component of the example's world. Every optional engine
//! feature is left out, so the component imports nothing but `log`.
//! (`jco componentize` fails on this machine's WIT path check;
//! componentize-js itself works.)

use std::{path::Path, process::Command};

use crate::{example::Example, run_tool, toolchain::npm_with, BuiltGuest};

const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Builds the JavaScript example into `out_dir`.
pub fn build(
    example: &Example,
    wit_dir: &Path,
    work_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    let bin = npm_with(&work_dir.join("../../toolchains/node"), &[COMPONENTIZE_JS])?;
    let source = example.single_source("js")?;
    let path = example.output(out_dir);
    run_tool(
        Command::new(bin.join("componentize-js"))
            .arg(&source)
            .arg("--wit")
            .arg(wit_dir)
            .args(["-n", &example.world])
            .args(["-d", "stdio", "random", "clocks", "http", "fetch-event"])
            .arg("-o")
            .arg(&path)
            .current_dir(work_dir),
        "componentize-js",
        example,
    )?;
    Ok(BuiltGuest {
        id: example.id(),
        path,
    })
}
