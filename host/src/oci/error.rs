//! Why a registry plugin did not give a component.

use std::fmt;

/// A failed pull: worth trying again, or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullError {
    /// The registry could not be reached or did not answer as asked; it
    /// may later.
    Unreachable(String),
    /// The artifact, or what its section asks of it, is wrong: asking
    /// again will not help.
    Refused(String),
}

impl PullError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, PullError::Unreachable(_))
    }

    /// The same error, its reason prefixed with `context`.
    pub fn context(self, context: impl fmt::Display) -> PullError {
        match self {
            PullError::Unreachable(r) => PullError::Unreachable(format!("{context}: {r}")),
            PullError::Refused(r) => PullError::Refused(format!("{context}: {r}")),
        }
    }
}

impl fmt::Display for PullError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullError::Unreachable(reason) | PullError::Refused(reason) => f.write_str(reason),
        }
    }
}

impl From<String> for PullError {
    /// Local checks refuse.
    fn from(reason: String) -> Self {
        PullError::Refused(reason)
    }
}
