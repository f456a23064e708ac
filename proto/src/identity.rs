//! NRI's rules for plugin names and indexes, which runtimes enforce on
//! RegisterPlugin: an index of exactly two ASCII digits and a non-empty
//! name of letters, digits and `_ . + -`.

/// Why a plugin name or index is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The name is empty or has a character NRI refuses.
    #[error("invalid plugin name {0:?}: use letters, digits and _ . + - only")]
    Name(String),
    /// The index is not two digits.
    #[error("invalid plugin index {0:?}: must be exactly two digits, 00 to 99")]
    Index(String),
}

/// Checks a plugin name and index.
pub fn check_identity(name: &str, index: &str) -> Result<(), IdentityError> {
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if !name_ok {
        return Err(IdentityError::Name(name.to_string()));
    }
    if index.len() != 2 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentityError::Index(index.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_indexes_follow_nri_rules() {
        assert_eq!(check_identity("nri-wasm_1.0+x", "50"), Ok(()));
        let cases = [
            (
                "",
                "50",
                "invalid plugin name \"\": use letters, digits and _ . + - only",
            ),
            (
                "a/b",
                "50",
                "invalid plugin name \"a/b\": use letters, digits and _ . + - only",
            ),
            (
                "x",
                "5",
                "invalid plugin index \"5\": must be exactly two digits, 00 to 99",
            ),
            (
                "x",
                "5a",
                "invalid plugin index \"5a\": must be exactly two digits, 00 to 99",
            ),
            (
                "x",
                "100",
                "invalid plugin index \"100\": must be exactly two digits, 00 to 99",
            ),
        ];
        for (name, index, want) in cases {
            assert_eq!(check_identity(name, index).unwrap_err().to_string(), want);
        }
    }
}
