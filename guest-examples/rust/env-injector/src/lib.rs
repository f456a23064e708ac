//! env-injector: sets environment variables and annotations on every
//! container being created.
//!
//! Configuration, one item per line (`#` starts a comment):
//!
//! ```text
//! env LOG_FORMAT=json
//! annotation example.com/injected-by=env-injector
//! ```

use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};

/// What to set on every container.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Injections {
    pub env: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

/// Reads the configuration.
pub fn parse(config: &str) -> Result<Injections, String> {
    let mut injections = Injections::default();
    for (number, line) in config.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: {line:?}", number + 1);
        let (kind, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `env K=V` or `annotation K=V`"))?;
        let (key, value) = rest
            .trim()
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        if key.is_empty() || key.starts_with('-') {
            return Err(bad("a key must not be empty or start with '-'"));
        }
        let entry = (key.to_string(), value.to_string());
        match kind {
            "env" => injections.env.push(entry),
            "annotation" => injections.annotations.push(entry),
            _ => return Err(bad("expected `env` or `annotation`")),
        }
    }
    Ok(injections)
}

impl Plugin for Injections {
    fn configure(config: &str, _: &RuntimeInfo) -> Result<Self, String> {
        parse(config)
    }
}

impl Adjuster for Injections {
    fn create_container(&mut self, _: &PodSandbox, _: &Container) -> Result<Adjustment, String> {
        let adjustment = self
            .env
            .iter()
            .fold(Adjustment::new(), |a, (k, v)| a.add_env(k, v));
        Ok(self
            .annotations
            .iter()
            .fold(adjustment, |a, (k, v)| a.add_annotation(k, v)))
    }
}

export!(Injections: adjuster);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_and_annotations() {
        let parsed = parse("env A=1 # comment\n\nannotation x.io/y=z=w\n").unwrap();
        assert_eq!(parsed.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(
            parsed.annotations,
            [("x.io/y".to_string(), "z=w".to_string())]
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(
            parse("label a=b").unwrap_err(),
            "line 1: expected `env` or `annotation`: \"label a=b\""
        );
        assert_eq!(
            parse("env A").unwrap_err(),
            "line 1: expected KEY=VALUE: \"env A\""
        );
        assert_eq!(
            parse("env -A=1").unwrap_err(),
            "line 1: a key must not be empty or start with '-': \"env -A=1\""
        );
    }
}
