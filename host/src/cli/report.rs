//! Guest calls in readable form, for `demo` and `test`.

use std::time::Duration;

use protobuf::text_format::print_to_string;

use crate::dispatch::{Answer, CallRecord, SlotError};

/// One call: who, how long, and what came of it, one line per item.
pub fn describe_call(record: &CallRecord<'_>) -> Vec<String> {
    let head = format!(
        "{:<22} {:>9}",
        record.guest.to_string(),
        millis(record.elapsed)
    );
    let mut lines = describe_outcome(record.event, record.outcome).into_iter();
    let first = lines.next().unwrap_or_default();
    std::iter::once(format!("{head}  {first}"))
        .chain(lines.map(|line| format!("{:33}{line}", "")))
        .collect()
}

/// What came of a call of `event`, one line per item.
pub fn describe_outcome(event: &str, outcome: Result<&Answer, &SlotError>) -> Vec<String> {
    match outcome {
        Ok(answer) => describe_answer(event, answer),
        Err(SlotError::Refused(refusals, _)) => refusals
            .iter()
            .map(|r| format!("REFUSED {r}; none of its answer applied"))
            .collect(),
        Err(err) => vec![format!("FAILED: it {err}")],
    }
}

/// Events whose answer can change something.
const ANSWERING: [&str; 5] = [
    "CreateContainer",
    "UpdateContainer",
    "StopContainer",
    "ValidateContainerAdjustment",
    "Synchronize",
];

fn describe_answer(event: &str, answer: &Answer) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(adjust) = &answer.adjust {
        if *adjust != Default::default() {
            lines.push(format!("adjusts {}", print_to_string(adjust)));
        }
    }
    for update in &answer.updates {
        lines.push(format!("updates {}", print_to_string(update)));
    }
    for eviction in &answer.evictions {
        lines.push(format!("evicts {}", print_to_string(eviction)));
    }
    if let Some(reason) = &answer.rejection {
        lines.push(format!("rejects: {reason}"));
    }
    if lines.is_empty() {
        let nothing = if ANSWERING.contains(&event) {
            "no change"
        } else {
            "observed"
        };
        lines.push(nothing.to_string());
    }
    lines
}

/// `0.123 ms`.
pub fn millis(elapsed: Duration) -> String {
    format!("{:.3} ms", elapsed.as_secs_f64() * 1e3)
}
