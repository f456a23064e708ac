//! `nri-wasm annotate`: writes into a built component what its manifest
//! declares it reads, as the custom section nri-wasm checks against the
//! read grants at load. Build scripts run it last.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use nri_wasm_guest_build::example::Example;

use crate::{
    grants::ReadGrants,
    runtime::{
        loader::is_core_module,
        sections::{with_custom_section, READS_SECTION},
    },
};

/// Declare in a built plugin what it reads, from its manifest.
#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The component (`NN-name.wasm`); annotated in place unless --output.
    plugin: PathBuf,
    /// The plugin's manifest: `index`, `name`, `world` and `reads`, what
    /// it reads as its read grants would say it.
    #[arg(long, default_value = "plugin.toml")]
    manifest: PathBuf,
    /// Where to write the annotated component [default: over PLUGIN].
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub(super) fn annotate(args: AnnotateArgs) -> anyhow::Result<()> {
    let manifest = read_manifest(&args.manifest)?;
    let Some(reads) = manifest.reads.clone() else {
        bail!(
            "{}: says nothing of what the plugin reads: `reads = {{ ... }}`, as its read grants would say it (`reads = {{}}` when it reads nothing they hide)",
            args.manifest.display()
        );
    };
    let output = args.output.as_deref().unwrap_or(&args.plugin);
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read {}", args.plugin.display()))?;
    if is_core_module(&bytes) {
        bail!(
            "{}: a core Wasm module, not a component: annotate what the build made a component",
            args.plugin.display()
        );
    }
    let annotated = with_custom_section(&bytes, READS_SECTION, reads.as_bytes())
        .map_err(|reason| anyhow!("{}: {reason}", args.plugin.display()))?;
    write_like(&args.plugin, output, &annotated)?;
    let expected = format!("{}.wasm", manifest.id());
    if output.file_name().is_some_and(|name| *name != *expected) {
        eprintln!(
            "warning: {}: nri-wasm takes a plugin's index and name from its file name; {} names it {expected}",
            output.display(),
            args.manifest.display()
        );
    }
    let declared = match reads.trim() {
        "" => "nothing its read grants hide".to_string(),
        reads => reads.lines().collect::<Vec<_>>().join("; "),
    };
    println!(
        "{}: world {}, declares it reads: {declared}",
        output.display(),
        manifest.world
    );
    Ok(())
}

/// The manifest, its reads checked as read grants are: a declaration
/// nri-wasm could not judge is refused here rather than at load.
pub(super) fn read_manifest(file: &Path) -> anyhow::Result<Example> {
    let manifest = Example::read(file)?;
    let reads = manifest.reads.as_deref().unwrap_or_default();
    toml::from_str::<ReadGrants>(reads)
        .map_err(|e| anyhow!("{}: reads: {}", file.display(), e.message()))?;
    Ok(manifest)
}

/// Writes `bytes` to `output` through a new file beside it, renamed over
/// it, with the mode of `original` (nri-wasm refuses plugin files others
/// can write, so the build's choice is kept). The new file is created, not
/// opened: a link planted at its name is not followed.
fn write_like(original: &Path, output: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mode = std::fs::metadata(original)?.permissions();
    let temp = output.with_extension(format!("wasm.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.set_permissions(mode)
        })
        .and_then(|()| std::fs::rename(&temp, output));
    if written.is_err() {
        std::fs::remove_file(&temp).ok();
    }
    written.with_context(|| format!("cannot write {}", output.display()))
}
