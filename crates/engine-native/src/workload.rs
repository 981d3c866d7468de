//! Request bodies for fixed-length synthetic prompts.
//!
//! Until token-exact prompts exist (they need a tokenizer), a prompt of N tokens is N common
//! English words, each one token in the usual BPE vocabularies; the report warns that prompt
//! lengths are approximate, and the server's `usage.prompt_tokens` is reported when it sends one.
//! Every prompt starts with a unique lead (`req-<n>`), so a server's prefix cache cannot turn
//! repeated prompts into instant first tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use bench_core::config::{Api, Config};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::client::Prepared;

const WORDS: [&str; 32] = [
    "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world",
    "school", "state", "family", "student", "group", "country", "problem", "hand", "part", "place",
    "case", "week", "company", "system", "program", "question", "work", "number", "night", "point",
    "home",
];

/// Marks where the unique lead goes in the body template.
const LEAD: &str = "\u{1}LEAD\u{1}";

#[derive(Debug)]
pub(crate) struct Workload {
    head: String,
    tail: String,
    prompt_tokens: u32,
    next: AtomicU64,
}

impl Workload {
    pub(crate) fn new(
        config: &Config,
        stream: bool,
        ignore_eos: bool,
        extra_body: &Map<String, Value>,
    ) -> Self {
        let prompt_tokens = config.data.prompt_tokens.unwrap_or(1).max(1);
        let output_tokens = config.data.output_tokens.unwrap_or(1);
        // The lead is one word; the rest fills the prompt.
        let rest: Vec<&str> = (0..prompt_tokens - 1)
            .map(|i| WORDS[i as usize % WORDS.len()])
            .collect();
        let text = format!(
            "{LEAD}{}{}",
            if rest.is_empty() { "" } else { " " },
            rest.join(" ")
        );
        let mut body = match config.target.api {
            Api::Chat => json!({ "messages": [{ "role": "user", "content": text }] }),
            Api::Completions => json!({ "prompt": text }),
        };
        let object = body.as_object_mut().expect("built as an object");
        object.insert("model".to_owned(), json!(config.target.model()));
        object.insert("max_tokens".to_owned(), json!(output_tokens));
        object.insert("stream".to_owned(), json!(stream));
        if stream {
            object.insert(
                "stream_options".to_owned(),
                json!({ "include_usage": true }),
            );
        }
        if ignore_eos {
            object.insert("ignore_eos".to_owned(), json!(true));
        }
        for (key, value) in extra_body {
            object.insert(key.clone(), value.clone());
        }
        let template = body.to_string();
        let escaped_lead = serde_json::to_string(LEAD).expect("a string serializes");
        let marker = &escaped_lead[1..escaped_lead.len() - 1];
        let (head, tail) = template
            .split_once(marker)
            .expect("the lead marker is in the body");
        Self {
            head: head.to_owned(),
            tail: tail.to_owned(),
            prompt_tokens,
            next: AtomicU64::new(0),
        }
    }

    /// The next request: the same prompt behind a new unique lead.
    pub(crate) fn next(&self) -> Prepared {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("req-{n}");
        Prepared {
            body: Bytes::from(format!("{}{id}{}", self.head, self.tail)),
            prompt_tokens: self.prompt_tokens,
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_a_unique_lead_and_the_requested_lengths() {
        let text = "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n[data]\nkind = \"synthetic\"\nprompt_tokens = 5\noutput_tokens = 7\n";
        let config = Config::load(text, bench_core::config::ConfigFormat::Toml, &[]).unwrap();
        let mut extra = Map::new();
        extra.insert("temperature".to_owned(), json!(0));
        let workload = Workload::new(&config, true, true, &extra);
        let a: Value = serde_json::from_slice(&workload.next().body).unwrap();
        let b: Value = serde_json::from_slice(&workload.next().body).unwrap();
        let content = a["messages"][0]["content"].as_str().unwrap();
        assert_eq!(content.split(' ').count(), 5);
        assert!(content.starts_with("req-0 "));
        assert!(b["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("req-1 "));
        assert_eq!(
            (
                a["max_tokens"].as_u64(),
                a["ignore_eos"].as_bool(),
                a["temperature"].as_u64()
            ),
            (Some(7), Some(true), Some(0))
        );
        assert_eq!(a["stream_options"]["include_usage"], true);
        assert_eq!(a["model"], "mock-model");
    }
}
