//! `profile.rate`: GuideLLM's `--rate`, one word for "how much load", put on the key that the
//! profile's kind reads. It is a shorthand of overrides (`--rate`, `--set profile.rate=...`),
//! never a key of a config file: it is replaced before the config is read strictly.
//!
//! | `profile.kind` | `profile.rate = "..."` sets |
//! |---|---|
//! | `constant`, `poisson`, `gamma` | `profile.rates`, a list of requests per second |
//! | `concurrent` | `profile.streams`, a list of stream counts |
//! | `sweep` | `profile.sweep_size`, the number of benchmarks |
//! | `throughput` | `profile.max_concurrency`, the requests in flight |
//!
//! `synchronous`, `search` and `replay` take no rate: the error names what to set instead.

use serde_json::{Number, Value};

use super::model::ProfileKind;
use crate::error::ConfigError;

/// The shorthand's dotted key.
pub(super) const KEY: &str = "profile.rate";

/// The key of `profile` and the value that `raw` (one number, or several separated by commas,
/// optionally in brackets) stands for under `kind` (the kind named in the tree so far).
pub(super) fn expand(kind: Option<&str>, raw: &str) -> Result<(&'static str, Value), ConfigError> {
    let invalid = |message: String| ConfigError::InvalidValue {
        key: KEY.to_owned(),
        message,
    };
    let Some(kind) = kind else {
        return Err(invalid(format!(
            "`{raw}` needs a profile kind to know what it means; give --profile (profile.kind) before it, e.g. --profile constant --rate {raw}"
        )));
    };
    let kind = ProfileKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| {
            invalid(format!(
                "profile.kind = `{kind}` is not a kind, so `{raw}` means nothing"
            ))
        })?;
    let numbers = numbers(raw).map_err(&invalid)?;
    let whole = |what: &str| -> Result<Vec<Value>, ConfigError> {
        numbers
            .iter()
            .map(|n| {
                if n.fract() == 0.0 && *n >= 1.0 && *n <= f64::from(u32::MAX) {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "checked to be a whole number in range just above"
                    )]
                    Ok(Value::from(*n as u64))
                } else {
                    Err(invalid(format!(
                        "`{n}` in `{raw}` is not a whole number of {what} (profile.kind = `{}`)",
                        kind.name()
                    )))
                }
            })
            .collect()
    };
    let single = |key: &'static str, what: &str| -> Result<(&'static str, Value), ConfigError> {
        let mut values = whole(what)?;
        if values.len() != 1 {
            return Err(invalid(format!(
                "profile.kind = `{}` takes one rate ({what}, profile.{key}), not `{raw}`",
                kind.name()
            )));
        }
        Ok((key, values.remove(0)))
    };
    use ProfileKind::*;
    match kind {
        Constant | Poisson | Gamma => Ok((
            "rates",
            Value::Array(
                numbers
                    .iter()
                    .map(|n| Number::from_f64(*n).map_or(Value::Null, Value::Number))
                    .collect(),
            ),
        )),
        Concurrent => Ok(("streams", Value::Array(whole("streams")?))),
        Sweep => single("sweep_size", "benchmarks in the sweep"),
        Throughput => single("max_concurrency", "requests in flight"),
        Synchronous => Err(invalid(format!(
            "profile.kind = `synchronous` sends one request at a time and takes no rate; remove `{raw}` or choose --profile constant"
        ))),
        Search => Err(invalid(format!(
            "profile.kind = `search` finds the rate itself from [slo]; remove `{raw}` (profile.search.max_rate bounds it)"
        ))),
        Replay => Err(invalid(format!(
            "profile.kind = `replay` sends each request at its recorded time; remove `{raw}` (profile.speedup scales the trace's pace)"
        ))),
    }
}

/// `5`, `1,2,4`, `[1, 2.5]`: finite numbers, at least one.
fn numbers(raw: &str) -> Result<Vec<f64>, String> {
    let inner = raw.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    let values: Vec<f64> = inner
        .split(',')
        .map(|piece| {
            let piece = piece.trim();
            piece
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or_else(|| {
                    format!(
                        "`{piece}` in `{raw}` is not a positive number; write e.g. `5` or `1,2,4`"
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expanded(kind: &str, raw: &str) -> (&'static str, Value) {
        expand(Some(kind), raw).unwrap()
    }

    fn refused(kind: Option<&str>, raw: &str) -> String {
        expand(kind, raw).unwrap_err().to_string()
    }

    #[test]
    fn each_kind_reads_the_rate_as_its_own_key() {
        assert_eq!(expanded("constant", "5"), ("rates", json!([5.0])));
        assert_eq!(expanded("poisson", "1, 2.5"), ("rates", json!([1.0, 2.5])));
        assert_eq!(expanded("gamma", "[4]"), ("rates", json!([4.0])));
        assert_eq!(
            expanded("concurrent", "1,4,16"),
            ("streams", json!([1, 4, 16]))
        );
        assert_eq!(expanded("sweep", "6"), ("sweep_size", json!(6)));
        assert_eq!(expanded("throughput", "64"), ("max_concurrency", json!(64)));
    }

    #[test]
    fn rates_that_mean_nothing_for_the_kind_are_refused_with_what_to_do() {
        assert!(
            refused(None, "5").contains("--profile"),
            "{}",
            refused(None, "5")
        );
        let message = refused(Some("synchronous"), "5");
        assert!(
            message.starts_with("invalid `profile.rate`: profile.kind = `synchronous`"),
            "{message}"
        );
        assert!(refused(Some("search"), "5").contains("[slo]"));
        assert!(refused(Some("replay"), "2").contains("profile.speedup"));
        let message = refused(Some("concurrent"), "2.5");
        assert!(
            message.contains("`2.5` in `2.5` is not a whole number of streams"),
            "{message}"
        );
        let message = refused(Some("sweep"), "4,8");
        assert!(message.contains("takes one rate"), "{message}");
        let message = refused(Some("constant"), "fast");
        assert!(
            message.contains("`fast` in `fast` is not a positive number"),
            "{message}"
        );
        assert!(refused(Some("constant"), "-1").contains("not a positive number"));
    }
}
