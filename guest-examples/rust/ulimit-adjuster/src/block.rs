//! The form nearly every ulimit annotation takes, read without a YAML
//! parser: a block sequence of maps, one `key: value` pair per line,
//!
//! ```yaml
//! - type: RLIMIT_NOFILE
//!   soft: 1024
//!   hard: 4096
//! ```
//!
//! Setting up a YAML parser costs several times the rest of the plugin's
//! work for a container. [`read`] answers only where what YAML makes of
//! the text is certain: every line `- key: value` or `  key: value`, each
//! key `type`, `soft` or `hard` at most once per entry, the type a known
//! rlimit name, the limits plain decimal integers. On anything else
//! (comments, quotes, flow style, other spacing or keys, blank lines) it
//! gives up, and the YAML parser reads the annotation and reports errors.

use crate::{is_known, Ulimit};

/// The annotation's entries, or `None` where it is not in the simple form.
pub fn read(value: &str) -> Option<Vec<Ulimit>> {
    let mut ulimits = Vec::new();
    let mut entry: Option<Entry> = None;
    for line in value.strip_suffix('\n').unwrap_or(value).split('\n') {
        let pair = match line.strip_prefix("- ") {
            Some(pair) => {
                if let Some(done) = entry.replace(Entry::default()) {
                    ulimits.push(done.finish()?);
                }
                pair
            }
            None => line.strip_prefix("  ")?,
        };
        entry.as_mut()?.set(pair)?;
    }
    ulimits.push(entry?.finish()?);
    Some(ulimits)
}

/// The fields of one entry seen so far.
#[derive(Default)]
struct Entry {
    kind: Option<String>,
    soft: Option<u64>,
    hard: Option<u64>,
}

impl Entry {
    fn set(&mut self, pair: &str) -> Option<()> {
        let (key, value) = pair.split_once(": ")?;
        match key {
            "type" if self.kind.is_none() && is_known(value) => self.kind = Some(value.into()),
            "soft" if self.soft.is_none() => self.soft = Some(decimal(value)?),
            "hard" if self.hard.is_none() => self.hard = Some(decimal(value)?),
            _ => return None,
        }
        Some(())
    }

    /// The entry; a missing limit is 0, as in the YAML reading.
    fn finish(self) -> Option<Ulimit> {
        Some(Ulimit {
            kind: self.kind?,
            soft: self.soft.unwrap_or(0),
            hard: self.hard.unwrap_or(0),
        })
    }
}

/// `0` or digits without a leading zero, within u64: the integers whose
/// YAML reading is the decimal one in every schema.
fn decimal(value: &str) -> Option<u64> {
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    if !digits || (value.len() > 1 && value.starts_with('0')) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(value: &str) -> Option<Vec<Ulimit>> {
        serde_norway::from_str(value).ok()
    }

    #[test]
    fn reads_the_simple_form() {
        let value = "- type: RLIMIT_NOFILE\n  soft: 1024\n  hard: 4096\n- type: nproc\n  hard: 7";
        let read = read(value).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            (read[1].kind.as_str(), read[1].soft, read[1].hard),
            ("nproc", 0, 7)
        );
        assert_eq!(Some(read), yaml(value));
    }

    #[test]
    fn leaves_everything_else_to_the_yaml_parser() {
        for value in [
            "",
            "\n",
            "- type: nofile # comment\n",
            "- type: 'nofile'\n",
            "- {type: nofile, soft: 1}\n",
            "-   type: nofile\n",
            "- type: nofile\n   soft: 1\n",
            "- type: nofile\n\n- type: nproc\n",
            "- type: nofile\r\n",
            "- type: nofile\n  soft: 010\n",
            "- type: nofile\n  soft: 0x10\n",
            "- type: nofile\n  soft: 18446744073709551616\n",
            "- type: nofile\n  type: nproc\n",
            "- type: files\n",
            "- soft: 1\n",
            "- type: nofile\n  kind: x\n",
            "---\n- type: nofile\n",
        ] {
            assert!(read(value).is_none(), "{value:?}");
        }
    }

    /// A small deterministic generator (xorshift) of annotations near the
    /// simple form.
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
            choices[self.below(choices.len())]
        }

        /// Mostly `usual`, now and then one of `others`.
        fn near<'a>(&mut self, usual: &'a str, others: &[&'a str]) -> &'a str {
            match self.below(6) {
                0 => self.pick(others),
                _ => usual,
            }
        }

        fn annotation(&mut self) -> String {
            let mut text = String::new();
            for _ in 0..1 + self.below(3) {
                let mut keys = vec!["type", "soft", "hard"];
                keys.truncate(1 + self.below(3));
                if self.below(8) == 0 {
                    let other = self.below(keys.len());
                    keys.swap(0, other);
                }
                for (i, key) in keys.into_iter().enumerate() {
                    let lead = if i == 0 {
                        self.near("- ", &["-  ", "-", "  - ", "-\t"])
                    } else {
                        self.near("  ", &["   ", " ", "\t", "- "])
                    };
                    let key = self.near(key, &["type", "soft", "Type", "kind"]);
                    let sep = self.near(": ", &[":", ":  ", " : "]);
                    let value = match key {
                        "type" => {
                            let usual =
                                self.pick(&["nofile", "RLIMIT_NPROC", "NoFile", "rlimit_core"]);
                            self.near(
                                usual,
                                &["files", "'nofile'", "\"nproc\"", "yes", "null", "~", ""],
                            )
                        }
                        _ => {
                            let usual = self.pick(&["0", "7", "1024", "18446744073709551615"]);
                            self.near(
                                usual,
                                &[
                                    "010",
                                    "0x10",
                                    "-1",
                                    "+1",
                                    "1_000",
                                    "1.5",
                                    "~",
                                    "18446744073709551616",
                                ],
                            )
                        }
                    };
                    let end = self.near("\n", &["\r\n", " \n", " # c\n", "\n\n"]);
                    text.push_str(&format!("{lead}{key}{sep}{value}{end}"));
                }
            }
            if self.below(2) == 0 {
                text.pop();
            }
            text
        }
    }

    #[test]
    fn where_it_answers_it_agrees_with_the_yaml_parser() {
        let mut gen = Gen(0x9e37_79b9_7f4a_7c15);
        let (mut answered, mut left) = (0, 0);
        for _ in 0..50_000 {
            let value = gen.annotation();
            match read(&value) {
                Some(read) => {
                    answered += 1;
                    assert_eq!(Some(read), yaml(&value), "{value:?}");
                }
                None => left += 1,
            }
        }
        // Both ways are taken often enough for the comparison to mean
        // something.
        assert!(answered > 500 && left > 500, "{answered} read, {left} left");
    }
}
