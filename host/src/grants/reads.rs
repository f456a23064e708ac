//! Declared reads: what a guest says it reads, against what its read
//! grants let it read. A guest its grants leave blind to what it reads
//! gets nothing where it expects data: a validator that never sees a mount
//! accepts every mount. So a read declared and not granted refuses the
//! guest at load, unless the operator says, in its section, that it may
//! run half-blind; a guest that declares nothing is told what its grants
//! hide.
//!
//! A guest declares its reads in a custom section of its component,
//! [`SECTION`], holding what its `read = { ... }` would say, as TOML
//! (`mounts = true`, `annotations = ["team.example.com/*"]`); the guest
//! build writes it from the plugin's manifest.

use serde::{Deserialize, Serialize};

use super::model::{Patterns, ReadGrants};

/// The custom section of a component that declares its reads.
pub use crate::runtime::sections::READS_SECTION as SECTION;

/// What a guest whose declared reads are not granted gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissingReads {
    /// It is refused at load.
    #[default]
    Refuse,
    /// It runs, and every start says what it cannot read.
    Warn,
}

/// What becomes of a guest at load, by its declared reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It reads what it was granted.
    Sees,
    /// It runs, with these lines in the log.
    Warn(Vec<String>),
    /// It is refused, for this reason.
    Refuse(String),
}

/// Judges a guest's declared reads (the text of its [`SECTION`], if any)
/// against its read grants.
pub fn judge(declared: Option<&str>, granted: &ReadGrants, policy: MissingReads) -> Verdict {
    let Some(text) = declared else {
        let hidden = hidden_by(granted);
        return match hidden.is_empty() {
            true => Verdict::Sees,
            false => Verdict::Warn(vec![format!(
                "declares nothing it reads (custom section {SECTION}); its read grants hide {}",
                hidden.join(", ")
            )]),
        };
    };
    let declared = match parse_declared(text) {
        Ok(declared) => declared,
        Err(err) => return Verdict::Refuse(err),
    };
    let missing = missing(&declared, granted);
    if missing.is_empty() {
        return Verdict::Sees;
    }
    let what = format!(
        "declares it reads {}, which its read grants do not give",
        missing.join(", ")
    );
    match policy {
        MissingReads::Refuse => Verdict::Refuse(format!(
            "{what}: grant them (`read = {{ ... }}` in its section), or say \
             `missing-reads = \"warn\"` there to run it without"
        )),
        MissingReads::Warn => Verdict::Warn(vec![format!(
            "{what}; it runs without them (missing-reads = \"warn\")"
        )]),
    }
}

/// The reads a guest declares, from the text of its [`SECTION`].
pub fn parse_declared(text: &str) -> Result<ReadGrants, String> {
    toml::from_str(text).map_err(|err| {
        let err = err.to_string();
        format!(
            "its declared reads (custom section {SECTION}) are not valid: {}",
            err.trim_end().replace('\n', " ")
        )
    })
}

/// The reads `declared` asks for that `granted` does not give, each as the
/// read grant that would.
fn missing(declared: &ReadGrants, granted: &ReadGrants) -> Vec<String> {
    let switches = [
        ("env values", "env = true", declared.env, granted.env),
        ("args", "args = true", declared.args, granted.args),
        ("mounts", "mounts = true", declared.mounts, granted.mounts),
        ("hooks", "hooks = true", declared.hooks, granted.hooks),
    ];
    let mut missing: Vec<String> = switches
        .into_iter()
        .filter(|(_, _, wants, has)| *wants && !*has)
        .map(|(what, grant, _, _)| format!("{what} ({grant})"))
        .collect();
    for (what, wants, has) in [
        ("annotations", &declared.annotations, &granted.annotations),
        ("labels", &declared.labels, &granted.labels),
    ] {
        missing.extend(
            uncovered(wants, has)
                .into_iter()
                .map(|key| format!("{what} {key:?} ({what} = [{key:?}])")),
        );
    }
    missing
}

/// The patterns of `wants` that no pattern of `has` covers: a declared
/// pattern is covered by a granted one that matches its text (`a/*` covers
/// `a/*` and `a/b`), so nothing declared is judged granted that is not.
fn uncovered<'a>(wants: &'a Patterns, has: &Patterns) -> Vec<&'a str> {
    wants
        .sources()
        .iter()
        .map(String::as_str)
        .filter(|key| !has.matches(key))
        .collect()
}

/// What `granted` hides, for a guest that declares nothing.
pub fn hidden_by(granted: &ReadGrants) -> Vec<String> {
    let mut hidden: Vec<String> = [
        ("env values", granted.env),
        ("args", granted.args),
        ("mounts", granted.mounts),
        ("hooks", granted.hooks),
    ]
    .into_iter()
    .filter(|(_, shown)| !shown)
    .map(|(what, _)| what.to_string())
    .collect();
    for (what, shown) in [
        ("annotations", &granted.annotations),
        ("labels", &granted.labels),
    ] {
        if shown.is_empty() {
            hidden.push(what.to_string());
        } else if !shown.sources().iter().any(|p| p == "*") {
            hidden.push(format!("{what} but {}", shown.describe()));
        }
    }
    hidden
}

/// What `granted` hid of `pod` and `container` from a guest: counts of
/// hidden values, keys of hidden annotations and labels.
pub fn hidden_in(
    granted: &ReadGrants,
    pod: Option<&nri_proto::api::PodSandbox>,
    container: Option<&nri_proto::api::Container>,
) -> Vec<String> {
    let mut hidden = Vec::new();
    if let Some(c) = container {
        let hooks = c.hooks.as_ref().map_or(0, |h| {
            h.prestart.len()
                + h.create_runtime.len()
                + h.create_container.len()
                + h.start_container.len()
                + h.poststart.len()
                + h.poststop.len()
        });
        let counts = [
            ("env values", c.env.len(), granted.env),
            ("args", c.args.len(), granted.args),
            ("mounts", c.mounts.len(), granted.mounts),
            ("hooks", hooks, granted.hooks),
        ];
        hidden.extend(
            counts
                .into_iter()
                .filter(|(_, n, shown)| *n > 0 && !shown)
                .map(|(what, n, _)| format!("{n} {what}")),
        );
    }
    let maps = [
        (
            "pod annotations",
            pod.map(|p| &p.annotations),
            &granted.annotations,
        ),
        ("pod labels", pod.map(|p| &p.labels), &granted.labels),
        (
            "container annotations",
            container.map(|c| &c.annotations),
            &granted.annotations,
        ),
        (
            "container labels",
            container.map(|c| &c.labels),
            &granted.labels,
        ),
    ];
    for (what, map, shown) in maps {
        let mut keys: Vec<&String> = map
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| !shown.matches(k))
            .collect();
        keys.sort();
        if !keys.is_empty() {
            hidden.push(format!("{what} {keys:?}"));
        }
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> ReadGrants {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_read_declared_and_not_granted_refuses_the_guest_or_warns_if_told() {
        let cases: [(&str, &str, Verdict); 5] = [
            ("mounts = true", "mounts = true", Verdict::Sees),
            (
                "annotations = [\"team.example.com/*\"]",
                "annotations = [\"team.example.com/*\"]",
                Verdict::Sees,
            ),
            (
                "annotations = [\"team.example.com/owner\"]",
                "annotations = [\"team.example.com/*\"]",
                Verdict::Sees,
            ),
            (
                "mounts = true\nlabels = [\"team\"]",
                "",
                Verdict::Refuse("declares it reads mounts (mounts = true), labels \"team\" (labels = [\"team\"]), which its read grants do not give: grant them (`read = { ... }` in its section), or say `missing-reads = \"warn\"` there to run it without".into()),
            ),
            (
                "annotations = [\"team.example.com/*\"]",
                "annotations = [\"team.example.com/owner\"]",
                Verdict::Refuse("declares it reads annotations \"team.example.com/*\" (annotations = [\"team.example.com/*\"]), which its read grants do not give: grant them (`read = { ... }` in its section), or say `missing-reads = \"warn\"` there to run it without".into()),
            ),
        ];
        for (declared, granted, want) in cases {
            assert_eq!(
                judge(Some(declared), &read(granted), MissingReads::Refuse),
                want,
                "{declared} against {granted}"
            );
        }
        assert_eq!(
            judge(Some("hooks = true"), &read(""), MissingReads::Warn),
            Verdict::Warn(vec!["declares it reads hooks (hooks = true), which its read grants do not give; it runs without them (missing-reads = \"warn\")".into()])
        );
    }

    #[test]
    fn a_guest_that_declares_nothing_is_told_what_its_grants_hide() {
        assert_eq!(
            judge(None, &read("env = true\nannotations = [\"a/*\"]"), MissingReads::Refuse),
            Verdict::Warn(vec!["declares nothing it reads (custom section nri-wasm:reads); its read grants hide args, mounts, hooks, annotations but [\"a/*\"], labels".into()])
        );
        let everything = read("env = true\nargs = true\nmounts = true\nhooks = true\nannotations = [\"*\"]\nlabels = [\"*\"]");
        assert!(hidden_by(&everything).is_empty());
        assert_eq!(
            judge(None, &everything, MissingReads::Refuse),
            Verdict::Sees
        );
    }

    #[test]
    fn a_declaration_that_is_not_valid_refuses_the_guest() {
        let Verdict::Refuse(reason) =
            judge(Some("mounts = \"yes\""), &read(""), MissingReads::Warn)
        else {
            panic!("not refused");
        };
        assert!(
            reason
                .starts_with("its declared reads (custom section nri-wasm:reads) are not valid: "),
            "{reason}"
        );
    }
}
