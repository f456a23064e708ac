//! `nri-wasm new`: a plugin in a directory of its own, ready to build and
//! test outside any repository: its source, a build script, its manifest
//! (`plugin.toml`: index, name, world, what it reads), its section of
//! nri-wasm's configuration with the grants it needs, the WIT package it
//! is built against, and a sample event.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::runtime::loader::parse_file_name;

/// Write a new plugin, in a directory of its own, to build and test.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name (lowercase letters, digits and `-`).
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Its two-digit index: plugins are called in this order.
    #[arg(long, default_value = "50")]
    index: String,
    /// The directory to write it in [default: ./NAME]; it must not exist
    /// or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Lang {
    Rust,
    C,
    Cpp,
    Zig,
    Go,
    Python,
    Js,
}

/// One file of a new plugin: its path in the directory, its text with
/// `{{...}}` placeholders, and whether it is a script to run.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: false,
    }
}

const fn script(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: true,
    }
}

/// What every plugin has, whatever its language.
const COMMON: [Template; 7] = [
    file(
        "plugin.toml",
        include_str!("../../scaffolds/common/plugin.toml"),
    ),
    file(
        "nri-wasm.toml",
        include_str!("../../scaffolds/common/nri-wasm.toml"),
    ),
    file(
        "README.md",
        include_str!("../../scaffolds/common/README.md"),
    ),
    file(
        ".gitignore",
        include_str!("../../scaffolds/common/gitignore"),
    ),
    file("wit/plugin.wit", include_str!("../../../wit/plugin.wit")),
    file("wit/types.wit", include_str!("../../../wit/types.wit")),
    file(
        "events/create-container.json",
        include_str!("../../../guest-examples/events/create-container.json"),
    ),
];

const RUST: [Template; 3] = [
    file(
        "Cargo.toml",
        include_str!("../../scaffolds/rust/Cargo.toml"),
    ),
    file("src/lib.rs", include_str!("../../scaffolds/rust/lib.rs")),
    script("build.sh", include_str!("../../scaffolds/rust/build.sh")),
];

const C: [Template; 2] = [
    file("{{module}}.c", include_str!("../../scaffolds/c/plugin.c")),
    script("build.sh", include_str!("../../scaffolds/common/build.sh")),
];

const CPP: [Template; 2] = [
    file(
        "{{module}}.cpp",
        include_str!("../../scaffolds/cpp/plugin.cpp"),
    ),
    script("build.sh", include_str!("../../scaffolds/common/build.sh")),
];

const ZIG: [Template; 2] = [
    file(
        "{{module}}.zig",
        include_str!("../../scaffolds/zig/plugin.zig"),
    ),
    script("build.sh", include_str!("../../scaffolds/common/build.sh")),
];

const GO: [Template; 3] = [
    file(
        "{{module}}.go",
        include_str!("../../scaffolds/go/plugin.go"),
    ),
    file(
        "abi.go",
        include_str!("../../../guest-examples/go/pod-metadata/abi.go"),
    ),
    script("build.sh", include_str!("../../scaffolds/common/build.sh")),
];

const PYTHON: [Template; 2] = [
    file(
        "{{module}}.py",
        include_str!("../../scaffolds/python/plugin.py"),
    ),
    script("build.sh", include_str!("../../scaffolds/common/build.sh")),
];

const JS: [Template; 2] = [
    file(
        "{{module}}.js",
        include_str!("../../scaffolds/js/plugin.js"),
    ),
    script("build.sh", include_str!("../../scaffolds/common/build.sh")),
];

impl Lang {
    /// The language's own files.
    fn templates(self) -> &'static [Template] {
        match self {
            Lang::Rust => &RUST,
            Lang::C => &C,
            Lang::Cpp => &CPP,
            Lang::Zig => &ZIG,
            Lang::Go => &GO,
            Lang::Python => &PYTHON,
            Lang::Js => &JS,
        }
    }

    /// The language's name, for people.
    fn display_name(self) -> &'static str {
        self.values()[1].1
    }

    /// The values of the placeholders that differ by language.
    fn values(self) -> [(&'static str, &'static str); 6] {
        let (lang, language, source, ignore, toolchain) = match self {
            Lang::Rust => ("rust", "Rust", "src/lib.rs", "/target/", ""),
            Lang::C => (
                "c",
                "C",
                "{{module}}.c",
                "",
                "wit-bindgen's C bindings of wit/, clang (Debian's, with wasi-libc) for wasm32-wasi",
            ),
            Lang::Cpp => (
                "cpp",
                "C++",
                "{{module}}.cpp",
                "",
                "wit-bindgen's C++ bindings of wit/, `zig c++` (C++23, Zig from PyPI) for wasm32-wasi",
            ),
            Lang::Zig => (
                "zig",
                "Zig",
                "{{module}}.zig",
                "",
                "wit-bindgen's C bindings of wit/, translated by `zig translate-c`, Zig (from PyPI) for wasm32-wasi",
            ),
            Lang::Go => (
                "go",
                "Go",
                "{{module}}.go",
                "",
                "Go (from PyPI) for wasip1, with abi.go as its canonical ABI and a WASI stub",
            ),
            Lang::Python => (
                "python",
                "Python",
                "{{module}}.py",
                "__pycache__/",
                "componentize-py (from PyPI) bundles CPython with the module",
            ),
            Lang::Js => (
                "js",
                "JavaScript",
                "{{module}}.js",
                "",
                "componentize-js (from npm) embeds the module in the StarlingMonkey engine",
            ),
        };
        let limits = match self {
            Lang::Python => "# CPython starts slowly and needs room.\nmemory-limit = \"128MiB\"\ndeadline = \"500ms\"\n",
            _ => "",
        };
        [
            ("lang", lang),
            ("language", language),
            ("source", source),
            ("ignore", ignore),
            ("toolchain", toolchain),
            ("limits", limits),
        ]
    }
}

pub(super) fn new(args: NewArgs) -> anyhow::Result<()> {
    if let Err(rule) = parse_file_name(&format!("{}-{}.wasm", args.index, args.name)) {
        bail!(
            "cannot name a plugin {:?} with index {:?}: {rule}",
            args.name,
            args.index
        );
    }
    if !is_module_name(&args.name) {
        bail!(
            "cannot name a plugin {:?}: a new plugin's name is lowercase letters, digits and `-`, \
             starting with a letter, so that every language takes it for its module",
            args.name
        );
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{} exists and is not empty", dir.display());
    }
    let module = args.name.replace('-', "_");
    let mut values = vec![("name", args.name.as_str()), ("index", args.index.as_str())];
    values.extend(args.lang.values());
    // Last: the values above may name the module.
    values.push(("module", &module));
    for template in COMMON.iter().chain(args.lang.templates()) {
        let path = dir.join(fill(template.path, &values));
        write(&path, &fill(template.text, &values), template.executable)?;
    }
    println!(
        "{}: a {} plugin; build and test it with\n  cd {}\n  ./build.sh\n  nri-wasm test {}-{}.wasm --config nri-wasm.toml --event events/create-container.json",
        dir.display(),
        args.lang.display_name(),
        dir.display(),
        args.index,
        args.name
    );
    Ok(())
}

/// Whether `name` is a crate, Python module and file name in every
/// language once its `-` are `_`.
fn is_module_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `text` with each `{{key}}` of `values` replaced by its value.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(text.to_string(), |text, (key, value)| {
        text.replace(&format!("{{{{{key}}}}}"), value)
    })
}

fn write(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}
