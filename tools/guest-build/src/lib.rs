//! Builds guest plugins from source, in every language of the examples
//! (`guest-examples/<language>/`), into components named `NN-name.wasm`.
//!
//! Rust: a Cargo workspace of Rust guests is
//! compiled for `wasm32-unknown-unknown`, and each crate's core module
//! (which carries its WIT world, embedded by wit-bindgen) is turned into a
//! component named `NN-name.wasm`, as nri-wasm loads plugins. A crate is a
//! plugin when its `Cargo.toml` has `[package.metadata.nri-wasm] index`; a
//! plugin that uses WASI (files, clocks) says `target = "wasm32-wasip2"`
//! there, and is built for that target, whose linker makes the component.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context};

pub mod bindings;
mod c;
mod cpp;
pub mod example;
mod go;
mod js;
mod python;
pub mod toolchain;
mod zig;

/// The Wasm target guests are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";
/// The target of guests that use WASI.
pub const WASI_TARGET: &str = "wasm32-wasip2";

/// A plugin that was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltGuest {
    /// `NN-name`.
    pub id: String,
    /// The component file.
    pub path: PathBuf,
}

/// A plugin crate of a workspace.
struct PluginCrate {
    name: String,
    index: String,
    lib_name: String,
    target: String,
    /// What it declares it reads (`[package.metadata.nri-wasm] reads`), as
    /// TOML.
    reads: Option<String>,
}

/// The languages of the examples besides Rust, by directory, with their
/// builders.
type Builder = fn(&example::Example, &Path, &Path, &Path) -> anyhow::Result<BuiltGuest>;
const LANGUAGES: [(&str, Builder); 6] = [
    ("c", c::build),
    ("cpp", cpp::build),
    ("go", go::build),
    ("zig", zig::build),
    ("python", python::build),
    ("js", js::build),
];

/// Builds every example of every language under `examples_dir` (the Rust
/// workspace `rust/`, and one directory per other language) into
/// `out_dir`, with intermediate files under `target_dir`.
pub fn build_examples(
    examples_dir: &Path,
    wit_dir: &Path,
    target_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<Vec<BuiltGuest>> {
    let mut built = build_workspace(&examples_dir.join("rust/Cargo.toml"), target_dir, out_dir)?;
    for (language, _) in LANGUAGES {
        for example in example::examples_in(&examples_dir.join(language))? {
            built.push(build_plugin(
                &example, language, wit_dir, target_dir, out_dir,
            )?);
        }
    }
    Ok(built)
}

/// The languages a plugin directory with a `plugin.toml` may be written
/// in (Rust plugins are crates of a workspace: [`build_workspace`]).
pub fn languages() -> impl Iterator<Item = &'static str> {
    LANGUAGES.iter().map(|(language, _)| *language)
}

/// Builds the plugin `example`, written in `language`, against the WIT
/// package in `wit_dir`, into `out_dir`, with intermediate files and
/// toolchains under `target_dir`; writes its declared reads into it.
pub fn build_plugin(
    example: &example::Example,
    language: &str,
    wit_dir: &Path,
    target_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    let Some((_, builder)) = LANGUAGES.iter().find(|(l, _)| *l == language) else {
        if language == "rust" {
            bail!("a Rust plugin builds with cargo (its build.sh), not from its plugin.toml");
        }
        bail!(
            "cannot build {language:?} plugins: one of {}",
            languages().collect::<Vec<_>>().join(", ")
        );
    };
    // Toolchains are found from here, at `target_dir/toolchains`.
    let work_dir = target_dir.join(language).join(example.id());
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let guest = builder(example, wit_dir, &work_dir, out_dir)
        .with_context(|| format!("building {}", example.dir.display()))?;
    if let Some(reads) = &example.reads {
        declare_reads(&guest.path, reads)?;
    }
    writable_by_owner_only(&guest.path, 0o644)?;
    Ok(guest)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Installs the Wasm targets guests are built for ([`TARGET`] and
/// [`WASI_TARGET`]) if rustup is there and lacks them.
pub fn ensure_target() -> anyhow::Result<()> {
    let Ok(output) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&output.stdout);
    for target in [TARGET, WASI_TARGET] {
        if installed.lines().any(|l| l.trim() == target) {
            continue;
        }
        let status = Command::new("rustup")
            .args(["target", "add", target])
            .status()?;
        if !status.success() {
            bail!("rustup target add {target} failed");
        }
    }
    Ok(())
}

/// Builds every plugin crate of the workspace `manifest` into `out_dir`,
/// compiling in `target_dir`.
pub fn build_workspace(
    manifest: &Path,
    target_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<Vec<BuiltGuest>> {
    let crates = plugin_crates(manifest)?;
    for target in [TARGET, WASI_TARGET] {
        let packages: Vec<&str> = crates
            .iter()
            .filter(|c| c.target == target)
            .map(|c| c.name.as_str())
            .collect();
        if packages.is_empty() {
            continue;
        }
        let mut build = cargo();
        build.args([
            "build",
            "--release",
            "--locked",
            "--target",
            target,
            "--manifest-path",
        ]);
        build.arg(manifest).arg("--target-dir").arg(target_dir);
        for package in &packages {
            build.args(["-p", package]);
        }
        if !build.status().context("running cargo")?.success() {
            bail!(
                "building the guests {packages:?} of {} failed",
                manifest.display()
            );
        }
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    writable_by_owner_only(out_dir, 0o755)?;
    crates
        .iter()
        .map(|c| {
            let module = target_dir
                .join(&c.target)
                .join("release")
                .join(format!("{}.wasm", c.lib_name));
            let id = format!("{}-{}", c.index, c.name);
            let path = out_dir.join(format!("{id}.wasm"));
            if c.target == WASI_TARGET {
                // Already a component: the target's linker made it.
                std::fs::copy(&module, &path)
                    .with_context(|| format!("copying {}", module.display()))?;
            } else {
                componentize(&module, &path)?;
            }
            if let Some(reads) = &c.reads {
                declare_reads(&path, reads)?;
            }
            writable_by_owner_only(&path, 0o644)?;
            Ok(BuiltGuest { id, path })
        })
        .collect()
}

/// The custom section in which a component declares what it reads.
pub const READS_SECTION: &str = "nri-wasm:reads";

/// Declares in `component` what the guest reads: `reads` as its read
/// grants would say it (`mounts = true`, `annotations = [...]`), in a
/// custom section at its end, which nri-wasm checks against the grants.
pub fn declare_reads(component: &Path, reads: &str) -> anyhow::Result<()> {
    let mut section = Vec::new();
    let custom = wasm_encoder::CustomSection {
        name: READS_SECTION.into(),
        data: reads.as_bytes().into(),
    };
    wasm_encoder::Section::append_to(&custom, &mut section);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(component)
        .with_context(|| format!("opening {}", component.display()))?;
    std::io::Write::write_all(&mut file, &section)
        .with_context(|| format!("declaring the reads of {}", component.display()))
}

/// Sets `mode` on `path`. nri-wasm refuses plugin files and directories
/// others can write, whatever the umask of the build made them.
pub fn writable_by_owner_only(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Runs one step of an example's build; the error names the tool and the
/// example.
pub(crate) fn run_tool(
    command: &mut Command,
    tool: &str,
    example: &example::Example,
) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {tool}"))?;
    if !status.success() {
        bail!("{tool} failed on {}", example.dir.display());
    }
    Ok(())
}

/// Makes `core`, the core module of `example`, its component in
/// `out_dir`.
pub(crate) fn component_of(
    example: &example::Example,
    core: &Path,
    out_dir: &Path,
) -> anyhow::Result<BuiltGuest> {
    let path = example.output(out_dir);
    componentize(core, &path)?;
    Ok(BuiltGuest {
        id: example.id(),
        path,
    })
}

/// Turns a core module with an embedded component type into a component.
/// A module that imports WASI preview 1 (through a libc's stdio, say) is
/// adapted to WASI 0.2 by the reactor adapter of our wasmtime's release;
/// others come out without any WASI import.
pub fn componentize(module: &Path, component: &Path) -> anyhow::Result<()> {
    use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    componentize_with(&bytes, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER, component)
        .with_context(|| format!("making a component of {}", module.display()))
}

/// Turns the core module `bytes` into a component at `component`, with
/// `adapter` serving its WASI preview 1 imports, if it has any.
pub(crate) fn componentize_with(
    bytes: &[u8],
    adapter: &[u8],
    component: &Path,
) -> anyhow::Result<()> {
    use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;
    let encoded = wit_component::ComponentEncoder::default()
        .module(bytes)
        .and_then(|e| e.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter))
        .and_then(|e| e.validate(true).encode())?;
    let temp = component.with_extension("wasm.tmp");
    std::fs::write(&temp, encoded).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, component)
        .with_context(|| format!("writing {}", component.display()))?;
    Ok(())
}

fn plugin_crates(manifest: &Path) -> anyhow::Result<Vec<PluginCrate>> {
    let output = cargo()
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packages = metadata["packages"]
        .as_array()
        .context("no packages in cargo metadata")?;
    let mut crates = Vec::new();
    for package in packages {
        let metadata = &package["metadata"]["nri-wasm"];
        let Some(index) = metadata["index"].as_str() else {
            continue;
        };
        let target = metadata["target"].as_str().unwrap_or(TARGET).to_string();
        let reads = match &metadata["reads"] {
            serde_json::Value::Null => None,
            reads => Some(toml::to_string(reads).context("the plugin's declared reads")?),
        };
        if target != TARGET && target != WASI_TARGET {
            bail!("unknown target {target:?}: use {TARGET} or {WASI_TARGET}");
        }
        let name = package["name"]
            .as_str()
            .context("package without a name")?
            .to_string();
        let lib_name = package["targets"]
            .as_array()
            .and_then(|t| {
                t.iter().find(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
                })
            })
            .and_then(|t| t["name"].as_str())
            .with_context(|| format!("{name} has no cdylib target"))?
            .replace('-', "_");
        crates.push(PluginCrate {
            name,
            index: index.to_string(),
            lib_name,
            target,
            reads,
        });
    }
    Ok(crates)
}
