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
        atomic::AtomicUsize,
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, Receiver, SyncSender},
        Arc, Mutex,
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
    /// Containers its updates and evictions name that it may not see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseen_targets: Vec<String>,
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
            unseen_targets: call.reach.unseen.clone(),
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
/// Answer bytes waiting for the writer; past them, records are dropped.
const QUEUE_BYTES: usize = 16 << 20;

/// Writes a record of every shadow guest's call to a file, on a thread of
/// its own: a guest's call never waits for the disk, and a full queue or
/// file drops records, never the call.
pub struct Recorder {
    queue: Option<SyncSender<Pending>>,
    queued_bytes: Arc<AtomicUsize>,
    dropped: AtomicU64,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// A record on its way to the file, its answer not yet in JSON.
type Pending = (ShadowRecord, Option<Answer>, usize);

impl Recorder {
    /// Appends to `path`, readable by its owner only (answers may carry
    /// what guests set in containers); a symbolic link is refused.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let what = || format!("record file {}", path.display());
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!("{} is a symbolic link", what());
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the {}", what()))?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            bail!("{} is not a regular file", what());
        }
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make the {} private", what()))?;
        // A line cut off by a crash ends here, before the first new one.
        if !ends_with_newline(&mut file, metadata.len())? {
            file.write_all(b"\n")?;
        }
        let written = metadata.len();
        let (queue, records) = sync_channel(QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let taken = queued_bytes.clone();
        let writer = std::thread::Builder::new()
            .name("nri-wasm-record".into())
            .spawn(move || write_records(file, written, records, &taken))
            .context("cannot start the record writer")?;
        Ok(Recorder {
            queue: Some(queue),
            queued_bytes,
            dropped: AtomicU64::new(0),
            writer: Some(writer),
        })
    }
}

/// Whether the file of `len` bytes is empty or ends with a newline.
fn ends_with_newline(file: &mut File, len: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Drop for Recorder {
    /// Writes what is queued before the recorder goes.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            writer.join().ok();
        }
    }
}

/// Writes the records that come, up to [`MAX_RECORD_BYTES`] in the file.
fn write_records(
    mut file: File,
    mut written: u64,
    records: Receiver<Pending>,
    queued_bytes: &AtomicUsize,
) {
    let mut full = false;
    for (mut record, answer, bytes) in records {
        queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
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
        let answer = call.answer();
        let bytes = answer.map_or(0, Answer::size);
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let record = (ShadowRecord::outline(call), answer.cloned(), bytes);
        let sent = queued + bytes <= QUEUE_BYTES
            && self
                .queue
                .as_ref()
                .is_some_and(|q| q.try_send(record).is_ok());
        if !sent {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
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
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read records {}", path.display()))?;
    let mut records = Vec::new();
    let mut cut = 0;
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(record) => records.push(record),
            // Cut off mid-write (a crash): not JSON to its end.
            Err(err) if err.is_eof() || err.is_syntax() => cut += 1,
            Err(err) => bail!("{}: line {} is no record: {err}", path.display(), n + 1),
        }
    }
    if cut > 0 {
        eprintln!("warning: {}: {cut} lines cut off; left out", path.display());
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
            unseen: record.unseen_targets.clone(),
        };
        suggestion.observe(observed(&answer, &reach, &record.event));
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
pub fn observed<'a>(answer: &'a Answer, reach: &'a Reach, event: &str) -> Observed<'a> {
    Observed {
        adjust: answer.adjust.as_ref(),
        updates: &answer.updates,
        evictions: &answer.evictions,
        scope: reach.scope,
        unseen: &reach.unseen,
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

    #[test]
    fn records_cut_off_by_a_crash_are_left_out_and_the_file_goes_on() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("record.jsonl");
        let whole = serde_json::to_string(&ShadowRecord {
            guest: "20-é".into(),
            ..ShadowRecord::default()
        })
        .unwrap();
        // A line cut inside a two-byte character, and no newline after it.
        let cut = &whole.as_bytes()[..whole.find('é').unwrap() + 1];
        let mut text = format!("{whole}\n").into_bytes();
        text.extend_from_slice(cut);
        std::fs::write(&path, &text).unwrap();
        drop(Recorder::create(&path).unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(format!("{whole}\n").as_bytes())
            .unwrap();
        let records = read_records(&path).unwrap();
        assert_eq!(records.len(), 2);
        std::fs::write(&path, "{\"guest\": 1}\n").unwrap();
        let err = read_records(&path).unwrap_err().to_string();
        assert!(err.contains("line 1 is no record"), "{err}");
    }
}
