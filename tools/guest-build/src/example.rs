//! The examples of the languages other than Rust: one directory each,
//! with a `plugin.toml` naming the plugin and its WIT world.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// One example plugin's directory and what it builds.
#[derive(Clone, Debug)]
pub struct Example {
    /// Its source directory.
    pub dir: PathBuf,
    /// Its two-digit index.
    pub index: String,
    /// Its name: the plugin is built into `NN-name.wasm`.
    pub name: String,
    /// The `nri:plugin` world it implements.
    pub world: String,
    /// What it declares it reads (`reads = { ... }`), as TOML.
    pub reads: Option<String>,
    /// The language it is written in, if its manifest says (the examples'
    /// is their directory's).
    pub language: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    index: String,
    name: String,
    world: String,
    reads: Option<toml::Table>,
    language: Option<String>,
}

impl Example {
    /// `NN-name`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.index, self.name)
    }

    /// Its source files ending in `.ext`, sorted.
    pub fn sources(&self, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("listing {}", self.dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Its one source file ending in `.ext`.
    pub fn single_source(&self, ext: &str) -> anyhow::Result<PathBuf> {
        match self.sources(ext)?.as_slice() {
            [one] => Ok(one.clone()),
            _ => anyhow::bail!("{} should have exactly one .{ext} file", self.dir.display()),
        }
    }

    /// `NN-name.wasm` in `out_dir`.
    pub fn output(&self, out_dir: &Path) -> PathBuf {
        out_dir.join(format!("{}.wasm", self.id()))
    }
}

/// The examples under `lang_dir`, in directory order.
pub fn examples_in(lang_dir: &Path) -> anyhow::Result<Vec<Example>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lang_dir)
        .with_context(|| format!("listing {}", lang_dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("plugin.toml").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter().map(Example::at).collect()
}

impl Example {
    /// The plugin whose `plugin.toml` is in `dir`.
    pub fn at(dir: PathBuf) -> anyhow::Result<Example> {
        Example::read(&dir.join("plugin.toml"))
    }

    /// The plugin of the manifest `file`, in the directory of the file.
    pub fn read(file: &Path) -> anyhow::Result<Example> {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end()))?;
        // Both become parts of paths: nothing that could leave a directory.
        if !is_index(&manifest.index) || !is_name(&manifest.name) {
            anyhow::bail!(
                "{}: a plugin is named by a two-digit index and a name of letters, digits, `-` and `_` (index {:?}, name {:?})",
                file.display(),
                manifest.index,
                manifest.name
            );
        }
        Ok(Example {
            dir,
            index: manifest.index,
            name: manifest.name,
            world: manifest.world,
            reads: manifest.reads.map(|r| r.to_string()),
            language: manifest.language,
        })
    }
}

fn is_index(index: &str) -> bool {
    index.len() == 2 && index.bytes().all(|b| b.is_ascii_digit())
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
