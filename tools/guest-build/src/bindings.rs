//! Guest bindings of the `nri:plugin` WIT worlds for languages whose
//! generators wit-bindgen ships as libraries (C, C++), generated into a
//! build directory, never committed: the WIT is the one source.

use std::path::Path;

use anyhow::Context;
use wit_bindgen_core::{Files, WorldGenerator};
use wit_parser::Resolve;

/// A language wit-bindgen generates bindings for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingLanguage {
    /// C: `<world>.h`, `<world>.c`, `<world>_component_type.o`.
    C,
    /// C++: `<world>_cpp.h`, `<world>.cpp`, `<world>_component_type.o`.
    Cpp,
}

/// Writes the bindings of `world` of the WIT package in `wit_dir` into
/// `out_dir`.
pub fn generate(
    wit_dir: &Path,
    world: &str,
    language: BindingLanguage,
    out_dir: &Path,
) -> anyhow::Result<()> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("reading the WIT package in {}", wit_dir.display()))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("no world {world:?} in {}", wit_dir.display()))?;
    let mut generator: Box<dyn WorldGenerator> = match language {
        BindingLanguage::C => wit_bindgen_c::Opts::default().build(),
        BindingLanguage::Cpp => wit_bindgen_cpp::Opts::default().build(None),
    };
    let mut files = Files::default();
    generator
        .generate(&mut resolve, world, &mut files)
        .context("generating bindings")?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (name, bytes) in files.iter() {
        let path = out_dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
