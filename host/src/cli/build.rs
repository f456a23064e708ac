//! `nri-wasm build`: builds the plugin of a directory with a `plugin.toml`
//! naming its language (C, C++, Zig, Go, Python, JavaScript), against the
//! WIT package in its `wit/`, into `NN-name.wasm` beside it, as the
//! examples are built; installs the language's pinned toolchain when
//! missing. Rust plugins build with cargo (their `build.sh`).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use nri_wasm_guest_build::{build_plugin, languages};

use super::annotate::read_manifest;

/// Build the plugin of a directory (C, C++, Zig, Go, Python, JavaScript).
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The plugin's directory: its `plugin.toml`, sources and `wit/`.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where toolchains and intermediate files go [default:
    /// ~/.cache/nri-wasm/build, for root too: they are no part of the
    /// daemon's cache].
    #[arg(long, env = "NRI_WASM_BUILD_DIR")]
    build_dir: Option<PathBuf>,
}

pub(super) fn build(args: BuildArgs) -> anyhow::Result<()> {
    // Absolute: the toolchains run in directories of their own.
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", args.dir.display()))?;
    let manifest_file = dir.join("plugin.toml");
    let plugin = read_manifest(&manifest_file)?;
    let Some(language) = plugin.language.clone() else {
        bail!(
            "{}: names no language: `language = \"c\"` (one of {})",
            manifest_file.display(),
            languages().collect::<Vec<_>>().join(", ")
        );
    };
    let build_dir = args
        .build_dir
        .or_else(|| super::user_cache_dir().map(|dir| dir.join("build")))
        .ok_or_else(|| anyhow!("no cache directory (no HOME): say --build-dir"))?;
    let built = build_plugin(&plugin, &language, &dir.join("wit"), &build_dir, &dir)?;
    println!("{}", built.path.display());
    Ok(())
}
