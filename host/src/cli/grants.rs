//! `nri-wasm grants suggest`: the narrowest `[plugins.NAME]` section that
//! would have let every observed answer of a plugin through, from the
//! records of a shadow run (`nri-wasm run --record FILE`) or from running
//! the plugin over a directory of event files, as `nri-wasm test` does.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};

use super::{check::load_component, test};
use crate::{
    config::{GuestSettings, Mode},
    grants::{reads, suggest::Suggestion, ReadGrants},
    runtime::{loader::parse_file_name, sections::custom_section},
    shadow::{self, Records},
};

/// Grants for a plugin from what it was seen to answer.
#[derive(Debug, Args)]
pub struct GrantsArgs {
    #[command(subcommand)]
    command: GrantsCommand,
}

#[derive(Debug, Subcommand)]
enum GrantsCommand {
    /// Print the narrowest section (grants, read grants) that would have
    /// let every observed answer of a plugin through, each line with the
    /// number of answers that needed it.
    Suggest(SuggestArgs),
}

#[derive(Debug, Args)]
struct SuggestArgs {
    /// Records of a shadow run (`nri-wasm run --record FILE`).
    #[arg(long, value_name = "FILE", required_unless_present = "events")]
    record: Option<PathBuf>,
    /// The guest of the records: its name (`team-env`) or id
    /// (`30-team-env`) [default: the plugin file's].
    #[arg(long)]
    guest: Option<String>,
    /// A directory of event files (`*.json`, as `nri-wasm test --event`
    /// takes), each run through the plugin in shadow mode.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "record",
        requires = "plugin"
    )]
    events: Option<PathBuf>,
    /// The plugin file (`NN-name.wasm`): what it declares it reads becomes
    /// the read grants; with --events, the plugin run.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Configuration with the plugin's limits and configuration string,
    /// for --events (its grants are not applied: the plugin runs in
    /// shadow mode).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for compiled guests [default: /var/cache/nri-wasm for
    /// root, else ~/.cache/nri-wasm].
    #[arg(long, env = "NRI_WASM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub(super) async fn grants(args: GrantsArgs) -> anyhow::Result<()> {
    match args.command {
        GrantsCommand::Suggest(args) => suggest(args).await,
    }
}

async fn suggest(args: SuggestArgs) -> anyhow::Result<()> {
    let file_id = match args.plugin.as_deref().and_then(|p| p.file_name()?.to_str()) {
        Some(file) => parse_file_name(file).map_err(|e| anyhow!("plugin file {file:?}: {e}"))?,
        None => None,
    };
    let guest = match (&args.guest, &file_id) {
        (Some(guest), _) => guest.clone(),
        (None, Some(id)) => id.to_string(),
        (None, None) => bail!("name the guest of the records: --guest NAME or --plugin FILE"),
    };
    let records = match (&args.record, &args.events) {
        (Some(file), _) => shadow::read_records(file)?,
        (None, Some(dir)) => run_events(&args, dir).await?,
        (None, None) => unreachable!("clap requires one"),
    };
    let (suggestion, unanswered) = shadow::suggest(&records, &guest)?;
    let reads = match &args.plugin {
        Some(plugin) => declared_reads(plugin)?,
        None => None,
    };
    report(&suggestion, unanswered, &guest, reads.as_ref())
}

/// Prints the section; what it could not grant goes to stderr.
fn report(
    suggestion: &Suggestion,
    unanswered: usize,
    guest: &str,
    reads: Option<&ReadGrants>,
) -> anyhow::Result<()> {
    if suggestion.needed().is_empty() {
        eprintln!("no answer of {guest} asked for a change: it needs no grants");
    }
    if unanswered > 0 {
        eprintln!("{unanswered} calls of {guest} gave no answer (faults, errors): nothing of them is suggested");
    }
    for note in suggestion.notes() {
        eprintln!("not granted: {note}");
    }
    let name = shadow::name_of(guest);
    print!("{}", suggestion.render(name, reads));
    Ok(())
}

/// Runs every event file of `dir` through the plugin in shadow mode and
/// keeps the records.
async fn run_events(args: &SuggestArgs, dir: &Path) -> anyhow::Result<Vec<shadow::ShadowRecord>> {
    let plugin = args.plugin.as_deref().expect("clap requires it");
    let (guest, mut config) =
        load_component(plugin, args.config.as_deref(), args.cache_dir.as_deref())?;
    let name = &guest.id().name;
    let shadow = GuestSettings {
        mode: Mode::Shadow,
        ..config.guest(name)
    };
    config.set_guest(name, shadow);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read event directory {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read event directory {}", dir.display()))?;
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    files.sort();
    if files.is_empty() {
        bail!("no event files (*.json) in {}", dir.display());
    }
    let records = Arc::new(Records::default());
    for file in files {
        let (_, request) = test::read_event(&file)?;
        test::replay(guest.clone(), &config, request, records.clone())
            .await
            .with_context(|| format!("event file {}", file.display()))?
            .ok();
    }
    let records = std::mem::take(&mut *records.0.lock().expect("never poisoned"));
    Ok(records)
}

/// What the plugin file declares it reads, if it declares anything.
fn declared_reads(plugin: &Path) -> anyhow::Result<Option<ReadGrants>> {
    let bytes = std::fs::read(plugin)
        .with_context(|| format!("cannot read plugin file {}", plugin.display()))?;
    let Some(section) = custom_section(&bytes, reads::SECTION) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(section)
        .map_err(|_| anyhow!("{}: its declared reads are not UTF-8", plugin.display()))?;
    let reads = reads::parse_declared(text).map_err(|e| anyhow!("{}: {e}", plugin.display()))?;
    Ok(Some(reads))
}
