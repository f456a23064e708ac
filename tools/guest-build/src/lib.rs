//! Builds guest plugins from source: a Cargo workspace of Rust guests is
//! compiled for `wasm32-unknown-unknown`, and each crate's core module
//! (which carries its WIT world, embedded by wit-bindgen) is turned into a
//! component named `NN-name.wasm`, as nri-wasm loads plugins. A crate is a
//! plugin when its `Cargo.toml` has `[package.metadata.nri-wasm] index`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context};

/// The Wasm target guests are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

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
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Installs the Wasm target if rustup is there and lacks it.
pub fn ensure_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if let Ok(output) = installed {
        if !String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|l| l.trim() == TARGET)
        {
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()?;
            if !status.success() {
                bail!("rustup target add {TARGET} failed");
            }
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
    let status = cargo()
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the guests of {} failed", manifest.display());
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let modules = target_dir.join(TARGET).join("release");
    crates
        .iter()
        .map(|c| {
            let module = modules.join(format!("{}.wasm", c.lib_name));
            let id = format!("{}-{}", c.index, c.name);
            let path = out_dir.join(format!("{id}.wasm"));
            componentize(&module, &path)?;
            Ok(BuiltGuest { id, path })
        })
        .collect()
}

/// Turns a core module with an embedded component type into a component.
pub fn componentize(module: &Path, component: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let encoded = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| e.validate(true).encode())
        .with_context(|| format!("making a component of {}", module.display()))?;
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
        let Some(index) = package["metadata"]["nri-wasm"]["index"].as_str() else {
            continue;
        };
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
        });
    }
    Ok(crates)
}
