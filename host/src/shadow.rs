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
    io::{BufRead, BufReader, Write},
    path::Path,
    sync::Mutex,
};

use anyhow::{anyhow, Context};
use protobuf::MessageFull;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    dispatch::{Answer, CallObserver, CallRecord, SlotError},
    grants::{
        suggest::{Observed, Suggestion},
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
    /// Which containers its updates reach.
    #[serde(default)]
    pub reach: UpdateScope,
    /// What its grants refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedField>,
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
        let mut record = ShadowRecord {
            guest: call.guest.to_string(),
            event: call.event.to_string(),
            object: call.object.to_string(),
            reach: call.reach,
            ..ShadowRecord::default()
        };
        if let Some(answer) = call.answer() {
            record.adjust = answer.adjust.as_ref().map(to_json);
            record.updates = answer.updates.iter().map(to_json).collect();
            record.evictions = answer.evictions.iter().map(to_json).collect();
            record.rejection = answer.rejection.clone();
        }
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
            Err(err) => record.error = Some(err.to_string()),
            Ok(_) => {}
        }
        record
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

/// Writes a record of every shadow guest's call to a file.
pub struct Recorder {
    file: Mutex<File>,
}

impl Recorder {
    /// Appends to `path`, created readable by its owner only: answers may
    /// carry what guests set in containers.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the record file {}", path.display()))?;
        Ok(Recorder {
            file: Mutex::new(file),
        })
    }
}

impl CallObserver for Recorder {
    fn call(&self, call: &CallRecord<'_>) {
        if !call.shadow {
            return;
        }
        let mut line = serde_json::to_string(&ShadowRecord::of(call)).expect("plain data");
        line.push('\n');
        let mut file = self.file.lock().expect("never poisoned");
        if let Err(err) = file.write_all(line.as_bytes()) {
            tracing::warn!(error = %err, "cannot write to the record file");
        }
    }
}

/// The records in `path`; a line that is no record is an error naming it.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<ShadowRecord>> {
    let file =
        File::open(path).with_context(|| format!("cannot read records {}", path.display()))?;
    let mut records = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ShadowRecord = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {} is no record", path.display(), n + 1))?;
        records.push(record);
    }
    Ok(records)
}

/// The suggestion from the records of `guest` (`NN-name` or `name`), and
/// how many of its records held no answer (faults, errors).
pub fn suggest(records: &[ShadowRecord], guest: &str) -> anyhow::Result<(Suggestion, usize)> {
    let mut suggestion = Suggestion::default();
    let mut unanswered = 0;
    let ours = records
        .iter()
        .filter(|r| r.guest == guest || name_of(&r.guest) == guest);
    for record in ours {
        let answer = record
            .answer()
            .with_context(|| format!("a record of {} at {}", record.guest, record.event))?;
        let Some(answer) = answer else {
            unanswered += 1;
            continue;
        };
        suggestion.observe(observed(&answer, record.reach, &record.event));
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
pub fn observed<'a>(answer: &'a Answer, reach: UpdateScope, event: &str) -> Observed<'a> {
    Observed {
        adjust: answer.adjust.as_ref(),
        updates: &answer.updates,
        evictions: &answer.evictions,
        reach,
        validated: event == VALIDATE,
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
