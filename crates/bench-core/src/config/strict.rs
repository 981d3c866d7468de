//! Strict deserialization with errors that name the full key path and suggest the intended key.
//!
//! Types carry `#[serde(deny_unknown_fields)]`; this module turns serde's messages
//! ("unknown field `modle`, expected one of `url`, `model`") into [`ConfigError`]s with a
//! "did you mean" computed by edit distance.

use serde::de::DeserializeOwned;

use crate::error::ConfigError;

/// Deserializes `value` into `T`; `prefix` is the dotted path of `value` in the whole config
/// (empty at the top).
pub(crate) fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = join(prefix, &dotted(error.path()));
        classify(&path, &error.inner().to_string())
    })
}

/// `a.b[0].c` as serde_path_to_error prints it, but with `.` before a key and `[i]` for indices.
fn dotted(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

/// The parent of a dotted path: `target.modle` -> `target`.
fn parent(path: &str) -> &str {
    path.rfind('.').map_or("", |i| &path[..i])
}

fn classify(path: &str, message: &str) -> ConfigError {
    let quoted = backticked(message);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (given, valid) = split_given(rest, &quoted);
        // The path already ends with the unknown key.
        let key = if path.ends_with(&given) {
            path.to_owned()
        } else {
            join(path, &given)
        };
        let base = parent(&key);
        let suggestion = closest(&given, &valid).map(|s| join(base, s));
        return ConfigError::UnknownKey {
            key,
            suggestion,
            valid,
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (given, valid) = split_given(rest, &quoted);
        let suggestion = closest(&given, &valid).map(str::to_owned);
        return ConfigError::UnknownVariant {
            key: path.to_owned(),
            value: given,
            suggestion,
            valid,
        };
    }
    if message.starts_with("missing field `") {
        let field = quoted.first().cloned().unwrap_or_default();
        return ConfigError::MissingKey {
            key: join(path, &field),
            hint: None,
        };
    }
    ConfigError::InvalidValue {
        key: if path.is_empty() {
            "(top level)".to_owned()
        } else {
            path.to_owned()
        },
        message: in_words(message),
    }
}

/// Serde's type names in a person's words: `invalid type: string "two", expected f64` becomes
/// `got the string "two", expected a number`.
fn in_words(message: &str) -> String {
    let message = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .map_or_else(|| message.to_owned(), |rest| format!("got {rest}"));
    let message = message.replacen("got string ", "got the string ", 1);
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message;
    };
    let words = match expected {
        "f64" | "f32" => "a number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "a boolean" => "true or false",
        other => other,
    };
    format!("{head}, expected {words}")
}

/// The given name and the valid alternatives from a serde "unknown ..." message.
fn split_given(rest: &str, quoted: &[String]) -> (String, Vec<String>) {
    let given = rest.split('`').next().unwrap_or_default().to_owned();
    let mut valid: Vec<String> = quoted.iter().skip(1).cloned().collect();
    valid.sort();
    (given, valid)
}

/// Every `backticked` word in a message, in order.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The name in `candidates` closest to `given`, when it is a plausible typo.
pub(crate) fn closest_name(given: &str, candidates: &[String]) -> Option<String> {
    closest(given, candidates).map(str::to_owned)
}

/// The candidate closest to `given`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(given: &str, candidates: &'a [String]) -> Option<&'a str> {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&given_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| *distance <= (c.len().max(given.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialization is exercised")]
    struct Inner {
        model: String,
        url: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialization is exercised")]
    struct Outer {
        target: Inner,
        items: Vec<Inner>,
    }

    fn parse(json: serde_json::Value) -> ConfigError {
        from_value::<Outer>(json, "").unwrap_err()
    }

    #[test]
    fn unknown_nested_key_names_full_path_and_suggestion() {
        let err = parse(serde_json::json!({"target": {"modle": "m", "url": "u"}, "items": []}));
        assert_eq!(
            err.to_string(),
            "unknown key `target.modle` (did you mean `target.model`?); valid keys here: model, url"
        );
    }

    #[test]
    fn unknown_key_in_a_list_and_under_a_prefix() {
        let err = from_value::<Outer>(
            serde_json::json!({"target": {"model": "m", "url": "u"}, "items": [{"model": "m", "ulr": "x"}]}),
            "engines.x",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `engines.x.items[0].ulr` (did you mean `engines.x.items[0].url`?); valid keys here: model, url"
        );
    }

    #[test]
    fn far_away_names_get_no_suggestion_and_missing_keys_are_named() {
        let err = parse(
            serde_json::json!({"target": {"model": "m", "url": "u", "zzzzzz": 1}, "items": []}),
        );
        assert!(
            matches!(
                err,
                ConfigError::UnknownKey {
                    suggestion: None,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse(serde_json::json!({"target": {"model": "m"}, "items": []}));
        assert_eq!(err.to_string(), "missing key `target.url`");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse(serde_json::json!({"target": {"model": 5, "url": "u"}, "items": []}));
        assert_eq!(
            err.to_string(),
            "invalid `target.model`: got integer `5`, expected a string"
        );
    }

    #[test]
    fn serde_type_names_are_said_in_words() {
        assert_eq!(
            in_words("invalid type: string \"two\", expected f64"),
            "got the string \"two\", expected a number"
        );
        assert_eq!(
            in_words("invalid value: integer `-3`, expected u64"),
            "got integer `-3`, expected a whole number, 0 or more"
        );
        assert_eq!(
            in_words("invalid type: floating point `2.5`, expected i32"),
            "got floating point `2.5`, expected a whole number"
        );
        assert_eq!(
            in_words("invalid type: integer `1`, expected a boolean"),
            "got integer `1`, expected true or false"
        );
        assert_eq!(in_words("something else"), "something else");
    }
}
