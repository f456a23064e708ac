//! Toolchains of the guest languages, installed from the registries when
//! missing: Debian packages (apt), Python packages (pip), npm packages.
//! Versions are pinned to what builds components our wasmtime runs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context};

/// Installs the Debian `packages` that are not installed yet.
pub fn ensure_debian_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !debian_package_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages {}", missing.join(" "));
    if apt_get_install(&missing)? {
        return Ok(());
    }
    // A fresh machine may have no package lists yet.
    let updated = Command::new("apt-get")
        .args(["update", "-q"])
        .status()
        .is_ok_and(|s| s.success());
    if !updated || !apt_get_install(&missing)? {
        bail!(
            "the Debian packages {} are missing and could not be installed: install them as root (apt-get install {})",
            missing.join(" "),
            missing.join(" ")
        );
    }
    Ok(())
}

fn debian_package_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt_get_install(packages: &[&str]) -> anyhow::Result<bool> {
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    Ok(status.success())
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed");
    }
    Ok(())
}

/// A Python virtual environment under `dir` with the pinned `packages`
/// (`name==version`) installed; returns its `python`.
pub fn python_with(dir: &Path, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin/python");
    if !python.is_file() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(dir),
            "python3 -m venv",
        )?;
    }
    let listed = Command::new(&python)
        .args(["-m", "pip", "freeze"])
        .output()
        .context("running pip freeze")?;
    let installed = String::from_utf8_lossy(&listed.stdout);
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !installed.lines().any(|l| l.eq_ignore_ascii_case(p)))
        .collect();
    if !missing.is_empty() {
        eprintln!("installing Python packages {}", missing.join(" "));
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(&missing),
            "pip install",
        )?;
    }
    Ok(python)
}

/// An npm project under `dir` with the pinned `packages` (`name@version`)
/// installed; returns its `node_modules/.bin`.
pub fn npm_with(dir: &Path, packages: &[&str]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !npm_package_installed(dir, p))
        .collect();
    if !missing.is_empty() {
        eprintln!("installing npm packages {}", missing.join(" "));
        run(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    "--save-exact",
                ])
                .args(&missing)
                .current_dir(dir),
            "npm install",
        )?;
    }
    Ok(dir.join("node_modules/.bin"))
}

/// Whether `name@version` is what `dir/node_modules/name` holds.
fn npm_package_installed(dir: &Path, package: &str) -> bool {
    let Some((name, version)) = package.rsplit_once('@') else {
        return false;
    };
    let manifest = dir.join("node_modules").join(name).join("package.json");
    std::fs::read_to_string(manifest)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|m| m["version"] == version)
}
