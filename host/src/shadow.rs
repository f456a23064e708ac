//! Records of shadow guests' answers (`nri-wasm run --record FILE`), one
//! JSON object per line, and the grant suggestions made from them.
//!
//! ```json
//! {"guest":"30-team-env","event":"CreateContainer","object":"ctr-1",
//!  "adjust":{"env":[{"key":"TEAM","value":"payments"}]},"reach":"none",
//!  "refused":[{"family":"env","field":"env","value":"TEAM","grant":"[]"}]}
//! ```
//!
//! NRI messages are in the protobuf JSON mapping, as in `nri-wasm test`
//! event files.

use std::{
    fs::File,
    io::Write,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, Receiver, SyncSender},
        Mutex,
    },
};

use anyhow::{anyhow, bail, Context};
use protobuf::MessageFull;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    dispatch::{Answer, CallObserver, CallRecord, SlotError},
    grants::{
        suggest::{Observed, Reach, Suggestion},
        UpdateScope,
    },
};

/// The event name of validations, whose answers need `validate`.
const VALIDATE: &str = "ValidateContainerAdjustment";

/// One shadow guest's answer to one event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShadowRecord {
    /// `NN-name`.
    pub guest: String,
    /// The NRI event.
    pub event: String,
    /// The container or pod the event is about.
    pub object: String,
    /// Its changes to the container being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjust: Option<Value>,
    /// Its updates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<Value>,
    /// Its evictions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evictions: Vec<Value>,
    /// A validator's reason to reject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<String>,
    /// The narrowest `updates` grant its updates need.
    #[serde(default)]
    pub reach: UpdateScope,
    /// Its updates and evictions of containers it may not see.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_targets: usize,
    /// What its grants refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedField>,
    /// What a guest before it set that its answer set too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// Why it gave no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A refused change, as the log names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedField {
    /// Grant family.
    pub family: String,
    /// NRI field.
    pub field: String,
    /// Value asked for.
    pub value: String,
    /// What the grant allows.
    pub grant: String,
}

impl ShadowRecord {
    /// The record of one call.
    pub fn of(call: &CallRecord<'_>) -> Self {
        let mut record = ShadowRecord::outline(call);
        if let Some(answer) = call.answer() {
            record.fill(answer);
        }
        record
    }

    /// The record of one call without its answer, which [`Self::fill`]
    /// adds: cheap, where the call was made.
    fn outline(call: &CallRecord<'_>) -> Self {
        let mut record = ShadowRecord {
            guest: call.guest.to_string(),
            event: call.event.to_string(),
            object: call.object.to_string(),
            reach: call.reach.scope,
            unseen_targets: call.reach.unseen,
            ..ShadowRecord::default()
        };
        match call.outcome {
            Err(SlotError::Refused(refusals, _)) => {
                record.refused = refusals
                    .iter()
                    .map(|r| RefusedField {
                        family: r.family.to_string(),
                        field: r.field.clone(),
                        value: r.value.clone(),
                        grant: r.grant.clone(),
                    })
                    .collect();
            }
            Err(SlotError::Conflict(conflict, _)) => record.conflict = Some(conflict.to_string()),
            Err(err) => record.error = Some(err.to_string()),
            Ok(_) => {}
        }
        record
    }

    /// Adds the answer, in the JSON mapping of its NRI messages.
    fn fill(&mut self, answer: &Answer) {
        self.adjust = answer.adjust.as_ref().map(to_json);
        self.updates = answer.updates.iter().map(to_json).collect();
        self.evictions = answer.evictions.iter().map(to_json).collect();
        self.rejection = answer.rejection.clone();
    }

    /// The answer recorded, if the guest gave one.
    pub fn answer(&self) -> anyhow::Result<Option<Answer>> {
        if self.error.is_some() {
            return Ok(None);
        }
        Ok(Some(Answer {
            adjust: self.adjust.as_ref().map(from_json).transpose()?,
            updates: self
                .updates
                .iter()
                .map(from_json)
                .collect::<Result<_, _>>()?,
            evictions: self
                .evictions
                .iter()
                .map(from_json)
                .collect::<Result<_, _>>()?,
            rejection: self.rejection.clone(),
        }))
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A message in the protobuf JSON mapping.
pub fn to_json<M: MessageFull>(message: &M) -> Value {
    let text = protobuf_json_mapping::print_to_string(message).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn from_json<M: MessageFull>(value: &Value) -> anyhow::Result<M> {
    protobuf_json_mapping::parse_from_str(&value.to_string())
        .map_err(|e| anyhow!("not a valid {}: {e}", M::descriptor().name()))
}

/// Largest record file; records past it are dropped.
pub const MAX_RECORD_BYTES: u64 = 256 << 20;
/// Records waiting for the writer; past them, records are dropped.
const QUEUE: usize = 256;

/// Writes a record of every shadow guest's call to a file, on a thread of
/// its own: a guest's call never waits for the disk, and a full queue or
/// file drops records, never the call.
pub struct Recorder {
    queue: SyncSender<(ShadowRecord, Option<Answer>)>,
    dropped: AtomicU64,
}

impl Recorder {
    /// Appends to `path`, readable by its owner only (answers may carry
    /// what guests set in containers); a symbolic link is refused.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let what = || format!("record file {}", path.display());
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!("{} is a symbolic link", what());
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the {}", what()))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make the {} private", what()))?;
        let written = file.metadata().map(|m| m.len()).unwrap_or_default();
        let (queue, records) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("nri-wasm-record".into())
            .spawn(move || write_records(file, written, records))
            .context("cannot start the record writer")?;
        Ok(Recorder {
            queue,
            dropped: AtomicU64::new(0),
        })
    }
}

/// Writes the records that come, up to [`MAX_RECORD_BYTES`] in the file.
fn write_records(
    mut file: File,
    mut written: u64,
    records: Receiver<(ShadowRecord, Option<Answer>)>,
) {
    let mut full = false;
    for (mut record, answer) in records {
        if let Some(answer) = &answer {
            record.fill(answer);
        }
        let mut line = serde_json::to_string(&record).expect("plain data");
        line.push('\n');
        let size = line.len() as u64;
        if written + size > MAX_RECORD_BYTES {
            if !full {
                tracing::warn!(
                    max_bytes = MAX_RECORD_BYTES,
                    "the record file is full; later records are dropped"
                );
                full = true;
            }
            continue;
        }
        match file.write_all(line.as_bytes()) {
            Ok(()) => written += size,
            Err(err) => tracing::warn!(error = %err, "cannot write to the record file"),
        }
    }
}

impl CallObserver for Recorder {
    fn call(&self, call: &CallRecord<'_>) {
        if !call.shadow {
            return;
        }
        let record = (ShadowRecord::outline(call), call.answer().cloned());
        if self.queue.try_send(record).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_power_of_two() || dropped == 0 {
                tracing::warn!(
                    dropped = dropped + 1,
                    "records of shadow guests dropped: the writer is behind"
                );
            }
        }
    }
}

/// The records in `path`; a line that is no record is an error naming it,
/// but for a last line the daemon was still writing (it has no newline),
/// which is left out with a warning.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<ShadowRecord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read records {}", path.display()))?;
    let mut records = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            Err(_) if n + 1 == lines.len() && !line.ends_with('\n') => {
                eprintln!(
                    "warning: {}: its last line is cut off; left out",
                    path.display()
                );
            }
            Err(err) => bail!("{}: line {} is no record: {err}", path.display(), n + 1),
        }
    }
    Ok(records)
}

/// The suggestion from the records of `guest` (`NN-name` or `name`), and
/// how many of its records held no answer (faults, errors).
pub fn suggest(records: &[ShadowRecord], guest: &str) -> anyhow::Result<(Suggestion, usize)> {
    let mut suggestion = Suggestion::default();
    let mut unanswered = 0;
    let ours: Vec<&ShadowRecord> = records
        .iter()
        .filter(|r| r.guest == guest || name_of(&r.guest) == guest)
        .collect();
    if ours.is_empty() {
        let mut present: Vec<&str> = records.iter().map(|r| r.guest.as_str()).collect();
        present.sort_unstable();
        present.dedup();
        bail!(
            "no records of {guest:?}; the records are of: {}",
            if present.is_empty() {
                "no guest".to_string()
            } else {
                present.join(", ")
            }
        );
    }
    for record in ours {
        let answer = record
            .answer()
            .with_context(|| format!("a record of {} at {}", record.guest, record.event))?;
        let Some(answer) = answer else {
            unanswered += 1;
            continue;
        };
        let reach = Reach {
            scope: record.reach,
            unseen: record.unseen_targets,
        };
        suggestion.observe(observed(&answer, reach, &record.event));
    }
    Ok((suggestion, unanswered))
}

/// The name in a guest id (`30-team-env`); a name stays as it is.
pub fn name_of(guest: &str) -> &str {
    match guest.split_once('-') {
        Some((index, name)) if index.len() == 2 && index.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => guest,
    }
}

/// An answer as a suggestion takes it in.
pub fn observed<'a>(answer: &'a Answer, reach: Reach, event: &str) -> Observed<'a> {
    Observed {
        adjust: answer.adjust.as_ref(),
        updates: &answer.updates,
        evictions: &answer.evictions,
        reach,
        validated: event == VALIDATE,
        rejection: answer.rejection.as_deref(),
    }
}

/// Keeps the records of a run in memory (`grants suggest --events`).
#[derive(Default)]
pub struct Records(pub Mutex<Vec<ShadowRecord>>);

impl CallObserver for Records {
    fn call(&self, call: &CallRecord<'_>) {
        if call.shadow {
            let record = ShadowRecord::of(call);
            self.0.lock().expect("never poisoned").push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nri_proto::api::{ContainerAdjustment, ContainerEviction, ContainerUpdate, KeyValue};

    #[test]
    fn a_record_holds_the_answer_it_was_made_of() {
        let answer = Answer {
            adjust: Some(ContainerAdjustment {
                env: vec![KeyValue {
                    key: "TEAM".into(),
                    value: "payments".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            updates: vec![ContainerUpdate {
                container_id: "c2".into(),
                ..Default::default()
            }],
            evictions: vec![ContainerEviction {
                container_id: "c3".into(),
                reason: "why".into(),
                ..Default::default()
            }],
            rejection: None,
        };
        let record = ShadowRecord {
            adjust: answer.adjust.as_ref().map(to_json),
            updates: answer.updates.iter().map(to_json).collect(),
            evictions: answer.evictions.iter().map(to_json).collect(),
            ..ShadowRecord::default()
        };
        let line = serde_json::to_string(&record).unwrap();
        let back: ShadowRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.answer().unwrap(), Some(answer));
    }
}
