//! What a report may show of a config: [`Config::redacted`] blanks the values of secret-looking
//! headers and engine or mock options. API keys never reach a config (it names only the
//! environment variable that holds one).

use super::model::Config;

impl Config {
    /// A copy safe to write into a report: secret-looking header values and engine options
    /// are replaced by `<redacted>`.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        for (name, value) in copy.target.headers.iter_mut() {
            if looks_secret(name) {
                *value = REDACTED.to_owned();
            }
        }
        for options in copy.engines.values_mut().chain(copy.target.mock.as_mut()) {
            redact_tree(&mut options.0);
        }
        copy
    }
}

/// What a redacted secret is replaced by.
pub const REDACTED: &str = "<redacted>";

/// Header and option names treated as secrets.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "password",
        "cookie",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

fn redact_tree(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                // `api_key_env` names a variable; the name is not the secret.
                if looks_secret(key) && !key.ends_with("_env") && child.is_string() {
                    *child = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact_tree(child);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_tree),
        _ => {}
    }
}
