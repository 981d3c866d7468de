//! Request bodies: a prompt and an output length per request, from a synthetic spec or a
//! genai-bench traffic scenario.
//!
//! Until token-exact prompts exist (they need a tokenizer), a prompt of N tokens is a unique
//! lead (`req-<n>`) and N - 1 common English words, each one token in the usual BPE
//! vocabularies; the report warns that prompt lengths are approximate, and the server's
//! `usage.prompt_tokens` is reported when it sends one. The unique lead keeps a server's prefix
//! cache from turning repeated prompts into instant first tokens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bench_core::config::{Api, Config, Data, Scenario};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Map, Value};

use crate::client::Prepared;

const WORDS: [&str; 32] = [
    "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world",
    "school", "state", "family", "student", "group", "country", "problem", "hand", "part", "place",
    "case", "week", "company", "system", "program", "question", "work", "number", "night", "point",
    "home",
];

/// Placeholders in the body template: the prompt text and the output length.
const PROMPT: &str = "\u{1}PROMPT\u{1}";
const MAX_TOKENS: &str = "\u{1}MAX\u{1}";

/// How one side (prompt or output) of each request is sized.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Length {
    Fixed(u32),
    /// A normal draw, rounded and clamped to `[low, high]`.
    Normal {
        mean: f64,
        stdev: f64,
        low: u32,
        high: u32,
    },
    /// A uniform draw in `[low, high]`.
    Uniform {
        low: u32,
        high: u32,
    },
}

impl Length {
    fn draw(self, rng: &mut StdRng) -> u32 {
        match self {
            Length::Fixed(n) => n,
            Length::Normal {
                mean,
                stdev,
                low,
                high,
            } => {
                let value = Normal::new(mean, stdev).map_or(mean, |n| n.sample(rng));
                (value.round().max(0.0) as u32).clamp(low, high)
            }
            Length::Uniform { low, high } => rng.random_range(low..=high),
        }
    }
}

/// A piece of the body template.
#[derive(Debug)]
enum Piece {
    Text(String),
    Prompt,
    MaxTokens,
}

#[derive(Debug)]
pub(crate) struct Workload {
    /// The body, with slots for the prompt and `max_tokens` (in whatever order the JSON
    /// serializer put the keys).
    pieces: Vec<Piece>,
    /// Prompt and output lengths.
    lengths: [Length; 2],
    /// The words after the lead, built once when every prompt has the same length.
    fixed_words: Option<String>,
    rng: Mutex<StdRng>,
    next: AtomicU64,
}

/// A side of a synthetic spec: a clamped normal when a deviation is given, uniform when only
/// bounds are, else constant (clamped to the bounds).
fn side(mean: Option<u32>, stdev: Option<f64>, min: Option<u32>, max: Option<u32>) -> Length {
    let low = min.unwrap_or(1).max(1);
    let high = max.unwrap_or(u32::MAX).max(low);
    match (mean, stdev) {
        (Some(mean), Some(stdev)) if stdev > 0.0 => Length::Normal {
            mean: f64::from(mean),
            stdev,
            low,
            high,
        },
        (Some(mean), _) => Length::Fixed(mean.clamp(low, high)),
        (None, _) => Length::Uniform { low, high },
    }
}

impl Workload {
    /// The workload of `label`: a traffic scenario, or the config's synthetic spec.
    pub(crate) fn new(
        config: &Config,
        label: &str,
        stream: bool,
        ignore_eos: bool,
        extra_body: &Map<String, Value>,
    ) -> Self {
        let lengths = match Scenario::parse(label) {
            Ok(scenario) => scenario_lengths(scenario),
            Err(_) => synthetic_lengths(&config.data),
        };
        let mut body = match config.target.api {
            Api::Chat => json!({ "messages": [{ "role": "user", "content": PROMPT }] }),
            Api::Completions => json!({ "prompt": PROMPT }),
        };
        let object = body.as_object_mut().expect("built as an object");
        object.insert("model".to_owned(), json!(config.target.model()));
        object.insert("max_tokens".to_owned(), json!(MAX_TOKENS));
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
        let quoted = |marker: &str| serde_json::to_string(marker).expect("a string serializes");
        let prompt_marker = quoted(PROMPT);
        // The prompt marker sits inside the content string; max_tokens replaces a whole value.
        let markers = [
            (
                prompt_marker[1..prompt_marker.len() - 1].to_owned(),
                Piece::Prompt,
            ),
            (quoted(MAX_TOKENS), Piece::MaxTokens),
        ];
        let mut pieces = Vec::new();
        let mut rest = template.as_str();
        loop {
            let next = markers
                .iter()
                .filter_map(|(m, _)| rest.find(m.as_str()).map(|at| (at, m)))
                .min_by_key(|(at, _)| *at);
            let Some((at, marker)) = next else {
                pieces.push(Piece::Text(rest.to_owned()));
                break;
            };
            pieces.push(Piece::Text(rest[..at].to_owned()));
            pieces.push(if *marker == markers[0].0 {
                Piece::Prompt
            } else {
                Piece::MaxTokens
            });
            rest = &rest[at + marker.len()..];
        }
        let fixed_words = match lengths[0] {
            Length::Fixed(input) => {
                let mut words = String::new();
                push_words(&mut words, input);
                Some(words)
            }
            _ => None,
        };
        Self {
            pieces,
            lengths,
            fixed_words,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5EED)),
            next: AtomicU64::new(0),
        }
    }

    fn draw(&self) -> (u32, u32) {
        let [input, output] = self.lengths;
        if let (Length::Fixed(i), Length::Fixed(o)) = (input, output) {
            return (i, o);
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        (input.draw(&mut rng), output.draw(&mut rng))
    }

    /// The next request: a unique lead, then words up to its prompt length.
    pub(crate) fn next(&self) -> Prepared {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("req-{n}");
        let (input, output) = self.draw();
        let mut body = String::with_capacity(256 + 8 * input as usize);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => body.push_str(text),
                Piece::Prompt => {
                    body.push_str(&id);
                    match &self.fixed_words {
                        Some(words) => body.push_str(words),
                        None => push_words(&mut body, input),
                    }
                }
                Piece::MaxTokens => body.push_str(&output.max(1).to_string()),
            }
        }
        Prepared {
            body: Bytes::from(body),
            prompt_tokens: input.max(1),
            id,
        }
    }
}

/// The words that follow the lead in a prompt of `tokens` tokens.
fn push_words(out: &mut String, tokens: u32) {
    for i in 1..tokens.max(1) {
        out.push(' ');
        out.push_str(WORDS[i as usize % WORDS.len()]);
    }
}

fn synthetic_lengths(data: &Data) -> [Length; 2] {
    [
        side(
            data.prompt_tokens,
            data.prompt_tokens_stdev,
            data.prompt_tokens_min,
            data.prompt_tokens_max,
        ),
        side(
            data.output_tokens,
            data.output_tokens_stdev,
            data.output_tokens_min,
            data.output_tokens_max,
        ),
    ]
}

/// genai-bench's sampling: normal lengths at least 1 in and 2 out; uniform between the bounds.
fn scenario_lengths(scenario: Scenario) -> [Length; 2] {
    match scenario {
        Scenario::Deterministic { input, output } => [Length::Fixed(input), Length::Fixed(output)],
        Scenario::Normal {
            input_mean,
            input_stdev,
            output_mean,
            output_stdev,
        } => [
            Length::Normal {
                mean: f64::from(input_mean),
                stdev: f64::from(input_stdev),
                low: 1,
                high: u32::MAX,
            },
            Length::Normal {
                mean: f64::from(output_mean),
                stdev: f64::from(output_stdev),
                low: 2,
                high: u32::MAX,
            },
        ],
        Scenario::Uniform {
            input_min,
            input_max,
            output_min,
            output_max,
        } => [
            Length::Uniform {
                low: input_min.max(1),
                high: input_max.max(1),
            },
            Length::Uniform {
                low: output_min.max(2),
                high: output_max.max(2),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data: &str) -> Config {
        let text = format!(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n[data]\n{data}"
        );
        Config::load(&text, bench_core::config::ConfigFormat::Toml, &[]).unwrap()
    }

    fn lengths(w: &Workload) -> (usize, u64) {
        let v: Value = serde_json::from_slice(&w.next().body).unwrap();
        (
            v["messages"][0]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            v["max_tokens"].as_u64().unwrap(),
        )
    }

    #[test]
    fn bodies_carry_a_unique_lead_and_the_requested_lengths() {
        let config = config("kind = \"synthetic\"\nprompt_tokens = 5\noutput_tokens = 7\n");
        let mut extra = Map::new();
        extra.insert("temperature".to_owned(), json!(0));
        let workload = Workload::new(&config, "x", true, true, &extra);
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

    #[test]
    fn scenarios_and_spreads_draw_lengths_within_their_bounds() {
        let config = config("kind = \"scenario\"\nscenarios = [\"D(12,3)\", \"U(5,9)/(4,6)\", \"N(40,5)/(20,2)\"]\n");
        let d = Workload::new(&config, "D(12,3)", true, true, &Map::new());
        assert_eq!(lengths(&d), (12, 3));
        let u = Workload::new(&config, "U(5,9)/(4,6)", true, true, &Map::new());
        let seen: Vec<(usize, u64)> = (0..200).map(|_| lengths(&u)).collect();
        assert!(seen
            .iter()
            .all(|&(i, o)| (5..=9).contains(&i) && (4..=6).contains(&o)));
        assert!(
            seen.iter().any(|s| s.0 == 5) && seen.iter().any(|s| s.0 == 9),
            "the whole range is drawn"
        );
        let n = Workload::new(&config, "N(40,5)/(20,2)", true, true, &Map::new());
        let mean = (0..2000).map(|_| lengths(&n).0 as f64).sum::<f64>() / 2000.0;
        assert!((mean - 40.0).abs() < 1.0, "{mean}");
        let spread = config_spread();
        let s = Workload::new(&spread, "x", true, true, &Map::new());
        assert!((0..300)
            .map(|_| lengths(&s))
            .all(|(i, o)| (8..=12).contains(&i) && o == 4));
    }

    #[test]
    fn bounds_alone_clamp_a_constant_and_bounds_without_a_length_draw_uniformly() {
        let fixed = config("kind = \"synthetic\"\nprompt_tokens = 10\nprompt_tokens_min = 5\nprompt_tokens_max = 15\noutput_tokens = 4\n");
        let w = Workload::new(&fixed, "x", true, true, &Map::new());
        assert!((0..50).all(|_| lengths(&w) == (10, 4)));
        assert_eq!(
            side(None, None, Some(5), Some(15)),
            Length::Uniform { low: 5, high: 15 }
        );
        assert_eq!(side(Some(30), None, Some(5), Some(15)), Length::Fixed(15));
    }

    fn config_spread() -> Config {
        config("kind = \"synthetic\"\nprompt_tokens = 10\nprompt_tokens_stdev = 3\nprompt_tokens_min = 8\nprompt_tokens_max = 12\noutput_tokens = 4\n")
    }
}
