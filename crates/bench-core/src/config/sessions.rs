//! The rules of multi-turn sessions (`data.turns`, `data.conversations`, `think_*`): what the
//! key table cannot say.

use super::limits::{at_most, seconds, MAX_TOKENS, MAX_TURNS};
use super::model::{Api, Config};
use crate::error::ConfigError;

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl Config {
    /// Sessions resend a conversation, which only the chat API has; the session keys need
    /// sessions; counts and seconds within their bounds.
    pub(super) fn validate_sessions(&self) -> Result<(), ConfigError> {
        let data = &self.data;
        if let Some(turns) = data.turns {
            if turns == 0 {
                return Err(invalid("data.turns", "must be at least 1"));
            }
            at_most("data.turns", turns, MAX_TURNS, "turns")?;
        }
        if let Some(tokens) = data.turn_prompt_tokens {
            if tokens == 0 {
                return Err(invalid("data.turn_prompt_tokens", "must be at least 1"));
            }
            at_most("data.turn_prompt_tokens", tokens, MAX_TOKENS, "tokens")?;
        }
        if let Some(think) = data.think_seconds {
            seconds("data.think_seconds", think, false)?;
        }
        if !data.sessions() {
            let session_only = [
                ("turn_prompt_tokens", data.turn_prompt_tokens.is_some()),
                ("think_seconds", data.think_seconds.is_some()),
                ("think_distribution", data.think_distribution.is_some()),
            ];
            if let Some((key, _)) = session_only.iter().find(|(_, set)| *set) {
                let how = match data.kind {
                    super::DataKind::File => "set data.conversations = true",
                    _ => "set data.turns",
                };
                return Err(invalid(
                    &format!("data.{key}"),
                    format!("applies to multi-turn sessions only; {how}, or remove it"),
                ));
            }
            return Ok(());
        }
        if self.target.api == Api::Completions {
            let key = if data.turns.is_some() {
                "data.turns"
            } else {
                "data.conversations"
            };
            return Err(invalid(
                key,
                "multi-turn sessions resend the conversation as chat messages, which target.api = \"completions\" cannot carry; use target.api = \"chat\"",
            ));
        }
        if data.samples.is_some() {
            return Err(invalid(
                "data.samples",
                "cannot be combined with multi-turn sessions, whose later turns carry the answers actually received; remove data.samples",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigFormat};
    use crate::ConfigError;

    fn load(data: &str, extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "{extra}\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 4\n[data]\n{data}\n"
        );
        Config::load(&text, ConfigFormat::Toml, &[])
    }

    fn message(result: Result<Config, ConfigError>) -> String {
        result.expect_err("refused").to_string()
    }

    const SYNTHETIC: &str =
        "kind = \"synthetic\"\nprompt_tokens = 10\noutput_tokens = 5\napproximate = true";

    #[test]
    fn sessions_load_with_their_keys() {
        let config = load(
            &format!("{SYNTHETIC}\nturns = 3\nturn_prompt_tokens = 4\nthink_seconds = 0.5\nthink_distribution = \"exponential\""),
            "",
        )
        .unwrap();
        assert!(config.data.sessions());
        assert_eq!(config.data.turns, Some(3));
        assert!(!load(SYNTHETIC, "").unwrap().data.sessions());
    }

    #[test]
    fn bad_session_settings_name_the_key_and_the_fix() {
        for (data, extra, key, words) in [
            ("turns = 0", "", "data.turns", "at least 1"),
            ("turns = 1001", "", "data.turns", "limit of 1000"),
            (
                "turns = 2\nturn_prompt_tokens = 0",
                "",
                "data.turn_prompt_tokens",
                "at least 1",
            ),
            (
                "turns = 2\nthink_seconds = -1",
                "",
                "data.think_seconds",
                "zero or more",
            ),
            (
                "think_seconds = 1",
                "",
                "data.think_seconds",
                "set data.turns",
            ),
            (
                "turn_prompt_tokens = 3",
                "",
                "data.turn_prompt_tokens",
                "sessions only",
            ),
            (
                "turns = 2",
                "[target]\napi = \"completions\"",
                "data.turns",
                "target.api = \"chat\"",
            ),
            (
                "turns = 2\nsamples = 3",
                "",
                "data.samples",
                "remove data.samples",
            ),
        ] {
            let text = message(load(&format!("{SYNTHETIC}\n{data}"), extra));
            assert!(text.contains(key) && text.contains(words), "{data}: {text}");
        }
        let file = "kind = \"file\"\npath = \"x.jsonl\"\nthink_seconds = 1";
        assert!(message(load(file, "")).contains("data.conversations = true"));
        let turns_in_file = "kind = \"file\"\npath = \"x.jsonl\"\nturns = 2";
        assert!(message(load(turns_in_file, "")).contains("turns"));
    }
}
