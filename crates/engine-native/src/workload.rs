//! Request bodies: a prompt and an output length per request, from a synthetic spec, a
//! genai-bench traffic scenario or a data file.
//!
//! - With a tokenizer, synthetic and scenario prompts have exactly the requested token count
//!   (`bench_data::PromptBuilder`), built on a feeder thread ahead of the schedule so a
//!   request never waits for its prompt.
//! - With `data.approximate = true` they are a unique lead (`req-<n>`) and N - 1 common English
//!   words, each one token in the usual BPE vocabularies; the report warns.
//! - `data.samples` prepares that many requests before the benchmark and sends them in a
//!   cycle; a data file's rows are sent in a cycle too.
//!
//! The unique lead keeps a server's prefix cache from turning repeated prompts into instant
//! first tokens (until a cycle repeats them).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};

use bench_core::config::{Api, Config, Data, DataKind, Scenario};
use bench_core::schema::Warning;
use bench_core::ConfigError;
use bench_data::{Dataset, PromptBuilder, TokenizerFile};
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

/// Bytes of text per approximated token when a file's prompts are not counted.
pub(crate) const BYTES_PER_TOKEN: usize = 4;

/// Bytes of prepared bodies the feeder keeps ready, at most.
const FEED_BYTES: usize = 16 << 20;
/// Prepared requests the feeder keeps ready, at most: enough to ride out a scheduling hiccup,
/// few enough that filling the queue does not compete with the benchmark's start.
const FEED_REQUESTS: usize = 256;

/// Placeholders in the body template: the prompt text and the output length.
const PROMPT: &str = "\u{1}PROMPT\u{1}";
const MAX_TOKENS: &str = "\u{1}MAX\u{1}";

/// How one side (prompt or output) of each request is sized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Length {
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
    pub(crate) fn draw(self, rng: &mut StdRng) -> u32 {
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

    pub(crate) fn mean(self) -> f64 {
        match self {
            Length::Fixed(n) => f64::from(n),
            Length::Normal { mean, .. } => mean,
            Length::Uniform { low, high } => (f64::from(low) + f64::from(high)) / 2.0,
        }
    }
}

/// Prompt and output lengths, drawn per request.
#[derive(Debug)]
struct Lengths {
    sides: [Length; 2],
    rng: Mutex<StdRng>,
}

impl Lengths {
    fn draw(&self) -> (u32, u32) {
        let [input, output] = self.sides;
        if let (Length::Fixed(i), Length::Fixed(o)) = (input, output) {
            return (i, o);
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        (input.draw(&mut rng).max(1), output.draw(&mut rng).max(1))
    }
}

/// A piece of the body template.
#[derive(Debug)]
enum Piece {
    Text(String),
    Prompt,
    MaxTokens,
}

/// The request body with slots for the prompt and `max_tokens` (in whatever order the JSON
/// serializer put the keys).
#[derive(Debug)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// `with_length = false`: no `max_tokens` and no `ignore_eos`, so the server decides
    /// where to stop (a data file row without an output length).
    pub(crate) fn new(config: &Config, options: &BodyOptions<'_>, with_length: bool) -> Self {
        let max_tokens = with_length.then(|| json!(MAX_TOKENS));
        let prompt = match config.target.api {
            Api::Chat => ("messages", json!([{ "role": "user", "content": PROMPT }])),
            Api::Completions => ("prompt", json!(PROMPT)),
        };
        let template = Value::Object(body_keys(config, options, prompt, max_tokens)).to_string();
        let quoted = |marker: &str| serde_json::to_string(marker).expect("a string serializes");
        let prompt_marker = quoted(PROMPT);
        // The prompt marker sits inside the content string; max_tokens replaces a whole value.
        let prompt_marker = prompt_marker[1..prompt_marker.len() - 1].to_owned();
        let max_marker = quoted(MAX_TOKENS);
        let mut pieces = Vec::new();
        let mut rest = template.as_str();
        loop {
            let next = [(&prompt_marker, true), (&max_marker, false)]
                .into_iter()
                .filter_map(|(m, is_prompt)| rest.find(m.as_str()).map(|at| (at, m, is_prompt)))
                .min_by_key(|(at, _, _)| *at);
            let Some((at, marker, is_prompt)) = next else {
                pieces.push(Piece::Text(rest.to_owned()));
                break;
            };
            pieces.push(Piece::Text(rest[..at].to_owned()));
            pieces.push(if is_prompt {
                Piece::Prompt
            } else {
                Piece::MaxTokens
            });
            rest = &rest[at + marker.len()..];
        }
        Self { pieces }
    }

    /// The body for `prompt` (raw text, escaped here) and `max_tokens`.
    pub(crate) fn render(&self, prompt: &str, max_tokens: u32) -> Bytes {
        let escaped = serde_json::to_string(prompt).expect("a string serializes");
        self.render_escaped(&escaped[1..escaped.len() - 1], max_tokens)
    }

    /// The body for an already JSON-escaped prompt.
    fn render_escaped(&self, prompt: &str, max_tokens: u32) -> Bytes {
        let mut body = String::with_capacity(256 + prompt.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => body.push_str(text),
                Piece::Prompt => body.push_str(prompt),
                Piece::MaxTokens => body.push_str(&max_tokens.max(1).to_string()),
            }
        }
        Bytes::from(body)
    }
}

/// A request body's keys: the prompt (`messages` or `prompt`), the model, `max_tokens` when
/// given (with `ignore_eos` when asked), streaming and its options, then the engine's
/// `extra_body`, which overrides any of them.
pub(crate) fn body_keys(
    config: &Config,
    options: &BodyOptions<'_>,
    prompt: (&str, Value),
    max_tokens: Option<Value>,
) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert(prompt.0.to_owned(), prompt.1);
    object.insert("model".to_owned(), json!(config.target.model()));
    let with_length = max_tokens.is_some();
    if let Some(max_tokens) = max_tokens {
        object.insert("max_tokens".to_owned(), max_tokens);
    }
    object.insert("stream".to_owned(), json!(options.stream));
    if options.stream {
        object.insert(
            "stream_options".to_owned(),
            json!({ "include_usage": true }),
        );
    }
    if options.ignore_eos && with_length {
        object.insert("ignore_eos".to_owned(), json!(true));
    }
    for (key, value) in options.extra_body {
        object.insert(key.clone(), value.clone());
    }
    object
}

/// One request body of the benchmark's shape for `prompt` and `max_tokens` (the connection
/// probe's).
pub(crate) fn single_body(
    config: &Config,
    options: &BodyOptions<'_>,
    prompt: &str,
    max_tokens: u32,
) -> Bytes {
    Template::new(config, options, true).render(prompt, max_tokens)
}

/// The engine options that shape every body.
#[derive(Debug)]
pub(crate) struct BodyOptions<'a> {
    pub(crate) stream: bool,
    pub(crate) ignore_eos: bool,
    pub(crate) extra_body: &'a Map<String, Value>,
}

/// Where each request comes from.
#[derive(Debug)]
enum Source {
    /// Approximate prompts of common words, built when asked (cheap).
    Words {
        lengths: Box<Lengths>,
        /// The words after the lead, built once when every prompt has the same length.
        fixed_words: Option<String>,
    },
    /// Token-exact prompts from a feeder thread.
    Exact(Feeder),
    /// Requests prepared in advance, sent in a cycle.
    Cycle(Vec<(Bytes, u32)>),
    /// A trace's requests, in order (`replay`).
    Trace(crate::replay::Replay),
    /// Multi-turn sessions (`crate::session`); the runner sends their turns.
    Sessions(Box<crate::session::Sessions>),
}

#[derive(Debug)]
pub(crate) struct Workload {
    template: Template,
    source: Source,
    next: Arc<AtomicU64>,
    /// Drawn afresh for every run: it moves every prompt's text (not its length), so a
    /// server's prompt cache that kept an earlier run's prompts (llama.cpp keeps many) cannot
    /// serve this run's.
    run: u64,
    /// What the report must say about this workload's data.
    pub(crate) warnings: Vec<Warning>,
}

impl Workload {
    /// The workload of `label`: a traffic scenario, or the config's synthetic spec or file.
    /// Blocking (it may load a tokenizer, read a file and build prompts): call it off the
    /// async runtime.
    pub(crate) fn new(
        config: &Config,
        label: &str,
        options: &BodyOptions<'_>,
    ) -> Result<Self, ConfigError> {
        let data = &config.data;
        let template = Template::new(config, options, true);
        let next = Arc::new(AtomicU64::new(0));
        let run: u64 = rand::random();
        let mut warnings = Vec::new();
        if data.sessions() {
            let sessions = crate::session::Sessions::new(config, options, run, &mut warnings)?;
            return Ok(Self {
                template,
                source: Source::Sessions(Box::new(sessions)),
                next,
                run,
                warnings,
            });
        }
        if data.kind == DataKind::File {
            return file_workload(config, options, template, warnings);
        }
        if data.kind == DataKind::Trace {
            let builder = match &data.tokenizer {
                Some(path) => Some(
                    PromptBuilder::new(load_tokenizer(path)?, 0)
                        .map_err(|e| invalid("data.tokenizer", e.to_string()))?,
                ),
                None => None,
            };
            let unlimited = Template::new(config, options, false);
            let replay =
                crate::replay::Replay::new(config, template, unlimited, builder, &mut warnings)?;
            return Ok(Self {
                template: Template::new(config, options, true),
                source: Source::Trace(replay),
                next,
                run,
                warnings,
            });
        }
        let sides = match Scenario::parse(label) {
            Ok(scenario) => scenario_lengths(scenario),
            Err(_) => synthetic_lengths(data),
        };
        let lengths = Lengths {
            sides,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5EED)),
        };
        let source = match &data.tokenizer {
            None => {
                warnings.push(Warning {
                    code: "approximate_tokens".to_owned(),
                    message: "data.approximate = true: prompts are built from words, about one token each, not counted with a tokenizer; \
                              prompt_tokens reports the server's usage.prompt_tokens when it sends one"
                        .to_owned(),
                });
                let fixed_words = match sides[0] {
                    Length::Fixed(input) => {
                        let mut words = String::new();
                        push_words(&mut words, input);
                        Some(words)
                    }
                    _ => None,
                };
                Source::Words {
                    lengths: Box::new(lengths),
                    fixed_words,
                }
            }
            Some(path) => {
                let tokenizer = load_tokenizer(path)?;
                let builder = PromptBuilder::new(tokenizer, data.prefix_tokens.unwrap_or(0))
                    .map_err(|e| invalid("data.prefix_tokens", e.to_string()))?;
                let maker = Maker {
                    builder,
                    lengths,
                    template: Template::new(config, options, true),
                    inexact: AtomicU64::new(0),
                    run,
                };
                // The first prompt now, so a length the tokenizer cannot meet stops the run
                // before it starts.
                let (input, _) = maker.lengths.draw();
                maker
                    .builder
                    .build("req-0", input, 0)
                    .map_err(|e| invalid("data.prompt_tokens", e.to_string()))?;
                match data.samples {
                    Some(samples) => Source::Cycle(
                        (0..u64::from(samples))
                            .map(|n| {
                                let p = maker.make(n);
                                (p.body, p.prompt_tokens)
                            })
                            .collect(),
                    ),
                    None => Source::Exact(Feeder::start(maker, next.clone())),
                }
            }
        };
        let mut workload = Self {
            template,
            source,
            next,
            run,
            warnings,
        };
        if let (Source::Words { .. }, Some(samples)) = (&workload.source, data.samples) {
            let prepared = (0..samples)
                .map(|_| {
                    let p = workload.next();
                    (p.body, p.prompt_tokens)
                })
                .collect();
            workload.source = Source::Cycle(prepared);
            workload.next.store(0, Ordering::Relaxed);
        }
        Ok(workload)
    }

    /// The next request.
    pub(crate) fn next(&self) -> Prepared {
        match &self.source {
            Source::Words {
                lengths,
                fixed_words,
            } => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let id = format!("req-{n}");
                let (input, output) = lengths.draw();
                let mut prompt = id.clone();
                match fixed_words {
                    Some(words) => prompt.push_str(words),
                    None => push_words(&mut prompt, input),
                }
                // The run's mark in place of the first word after the lead, so an earlier
                // run's cached prompts differ from this run's.
                if prompt.len() > id.len() {
                    let first = id.len() + 1;
                    let end = prompt[first..]
                        .find(' ')
                        .map_or(prompt.len(), |i| first + i);
                    prompt.replace_range(first..end, &format!("r{:x}", self.run >> 40));
                }
                Prepared {
                    body: self.template.render_escaped(&prompt, output),
                    prompt_tokens: input,
                    id,
                    turn: None,
                }
            }
            Source::Exact(feeder) => feeder.next(&self.next),
            Source::Trace(replay) => replay.next(),
            // A lone request of sessions: a new session's first turn.
            Source::Sessions(sessions) => {
                let mut conversation = sessions.start();
                conversation
                    .next_turn(sessions)
                    .unwrap_or_else(|| Prepared {
                        body: self.template.render("", 1),
                        prompt_tokens: 0,
                        id: "empty".to_owned(),
                        turn: None,
                    })
            }
            Source::Cycle(prepared) => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let (body, prompt_tokens) = &prepared[(n % prepared.len() as u64) as usize];
                Prepared {
                    body: body.clone(),
                    prompt_tokens: *prompt_tokens,
                    id: format!("req-{n}"),
                    turn: None,
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn replay(&self) -> Option<&crate::replay::Replay> {
        match &self.source {
            Source::Trace(replay) => Some(replay),
            _ => None,
        }
    }

    /// A trace's send offsets in seconds from the benchmark's start, one per request.
    pub(crate) fn offsets(&self) -> Option<Arc<[f64]>> {
        match &self.source {
            Source::Trace(replay) => Some(replay.offsets.clone()),
            _ => None,
        }
    }

    /// The multi-turn sessions this workload sends, when it sends sessions.
    pub(crate) fn sessions(&self) -> Option<&crate::session::Sessions> {
        match &self.source {
            Source::Sessions(sessions) => Some(sessions),
            _ => None,
        }
    }

    /// Warnings about what happened while the workload was used.
    pub(crate) fn run_warnings(&self) -> Vec<Warning> {
        if let Source::Trace(replay) = &self.source {
            return replay.run_warnings();
        }
        if let Source::Sessions(sessions) = &self.source {
            return sessions.run_warnings();
        }
        let Source::Exact(feeder) = &self.source else {
            return Vec::new();
        };
        feeder_warnings(
            feeder.starved.load(Ordering::Relaxed),
            ("prompt was", "prompts were"),
            "their schedule lag includes the build (set data.samples to prepare prompts before the benchmark)",
            feeder.maker.inexact.load(Ordering::Relaxed),
            ("prompt", "prompts"),
            &format!(
                "could not be built to the token count asked with {} and went out at the nearest length found",
                feeder.maker.builder.tokenizer().path().display()
            ),
        )
    }
}

/// A feeder thread's warnings at the end of a run: `starved` requests (named by `noun`, as
/// `(one, many)` with their verb) built on the request path because it fell behind, and
/// `inexact` prompts (named by `inexact_noun`) whose exact token count could not be reached.
/// Every source of requests (data, traces, sessions) words them the same way.
pub(crate) fn feeder_warnings(
    starved: u64,
    noun: (&str, &str),
    late_consequence: &str,
    inexact: u64,
    inexact_noun: (&str, &str),
    inexact_outcome: &str,
) -> Vec<Warning> {
    let counted = |n: u64| {
        let (one, many) = noun;
        format!("{n} {}", if n == 1 { one } else { many })
    };
    let mut warnings = Vec::new();
    if starved > 0 {
        warnings.push(Warning {
            code: "prompts_built_late".to_owned(),
            message: format!(
                "{} built on the request path because the feeder thread fell behind; {late_consequence}",
                counted(starved)
            ),
        });
    }
    if inexact > 0 {
        let (one, many) = inexact_noun;
        warnings.push(Warning {
            code: "approximate_tokens".to_owned(),
            message: format!(
                "{inexact} {} {inexact_outcome}",
                if inexact == 1 { one } else { many }
            ),
        });
    }
    warnings
}

/// Builds one token-exact request.
#[derive(Debug)]
struct Maker {
    builder: PromptBuilder,
    lengths: Lengths,
    template: Template,
    /// Prompts whose exact length could not be reached.
    inexact: AtomicU64,
    /// The run's variant of the prompt texts ([`Workload::run`]).
    run: u64,
}

impl Maker {
    fn make(&self, n: u64) -> Prepared {
        let id = format!("req-{n}");
        let (input, output) = self.lengths.draw();
        let prompt = match self.builder.build(&id, input, n ^ self.run) {
            Ok(prompt) => prompt,
            Err(_) => {
                // Checked on the first prompt; a later length that cannot be met is sent as
                // words and counted.
                self.inexact.fetch_add(1, Ordering::Relaxed);
                let mut prompt = id.clone();
                push_words(&mut prompt, input);
                prompt
            }
        };
        Prepared {
            body: self.template.render(&prompt, output),
            prompt_tokens: input,
            id,
            turn: None,
        }
    }
}

/// A thread that builds requests ahead of the schedule into a bounded queue; the request path
/// only takes from it, and builds one itself (counted) when the queue is empty.
#[derive(Debug)]
struct Feeder {
    maker: Arc<Maker>,
    ready: Mutex<Receiver<Prepared>>,
    starved: AtomicU64,
}

impl Feeder {
    fn start(maker: Maker, next: Arc<AtomicU64>) -> Self {
        let body_bytes = (maker.lengths.sides[0].mean() as usize).max(1) * 8 + 256;
        let capacity = (FEED_BYTES / body_bytes).clamp(16, FEED_REQUESTS);
        let (sender, ready) = mpsc::sync_channel(capacity);
        let maker = Arc::new(maker);
        let feeding = maker.clone();
        let spawned = std::thread::Builder::new()
            .name("prompt-feeder".to_owned())
            .spawn(move || feed(&feeding, &next, &sender));
        if let Err(error) = spawned {
            tracing::warn!("cannot start the prompt feeder thread ({error}); prompts are built on the request path");
        }
        Self {
            maker,
            ready: Mutex::new(ready),
            starved: AtomicU64::new(0),
        }
    }

    fn next(&self, counter: &AtomicU64) -> Prepared {
        let taken = self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_recv();
        match taken {
            Ok(prepared) => prepared,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                self.starved.fetch_add(1, Ordering::Relaxed);
                self.maker.make(counter.fetch_add(1, Ordering::Relaxed))
            }
        }
    }
}

/// Runs until the workload (the receiver) is dropped.
fn feed(maker: &Maker, next: &AtomicU64, sender: &SyncSender<Prepared>) {
    loop {
        let prepared = maker.make(next.fetch_add(1, Ordering::Relaxed));
        if sender.send(prepared).is_err() {
            return;
        }
    }
}

fn file_workload(
    config: &Config,
    options: &BodyOptions<'_>,
    template: Template,
    mut warnings: Vec<Warning>,
) -> Result<Workload, ConfigError> {
    let data = &config.data;
    let path = data.path.as_deref().unwrap_or_default();
    let dataset = Dataset::load(Path::new(path), data.prompt_column.as_deref())
        .map_err(|e| invalid("data.path", e.to_string()))?;
    let tokenizer = data.tokenizer.as_deref().map(load_tokenizer).transpose()?;
    warnings.extend(skipped_rows_warning(
        &dataset.skipped,
        dataset.rows.len(),
        &dataset.path,
    ));
    if tokenizer.is_none() {
        warnings.push(Warning {
            code: "approximate_tokens".to_owned(),
            message: format!("no data.tokenizer: the prompt lengths the client expects are approximated as one token per {BYTES_PER_TOKEN} bytes; prompt_tokens reports the server's usage.prompt_tokens when it sends one"),
        });
    }
    let unlimited = Template::new(config, options, false);
    let take = data.samples.map_or(usize::MAX, |s| s as usize);
    let rows = crate::shard::rows(config, dataset.rows, "data.path")?;
    let mut prepared = Vec::new();
    for row in rows.iter().take(take) {
        let prompt_tokens = match &tokenizer {
            Some(t) => t
                .count(&row.prompt)
                .map_err(|e| invalid("data.tokenizer", e.to_string()))?,
            None => u32::try_from(row.prompt.len().div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX),
        };
        let body = match data.output_tokens.or(row.output_tokens) {
            Some(output) => template.render(&row.prompt, output),
            None => unlimited.render(&row.prompt, 0),
        };
        prepared.push((body, prompt_tokens));
    }
    Ok(Workload {
        template,
        source: Source::Cycle(prepared),
        next: Arc::new(AtomicU64::new(0)),
        // A file's prompts are the user's, sent as they are.
        run: 0,
        warnings,
    })
}

/// `data_rows_skipped`, naming the first three rows a data file's reader skipped and why.
pub(crate) fn skipped_rows_warning(
    skipped: &[bench_data::Skipped],
    kept: usize,
    path: &Path,
) -> Option<Warning> {
    if skipped.is_empty() {
        return None;
    }
    let first: Vec<String> = skipped
        .iter()
        .take(3)
        .map(|s| format!("line {}: {}", s.line, s.reason))
        .collect();
    Some(Warning {
        code: "data_rows_skipped".to_owned(),
        message: format!(
            "{} of {} rows of {} were skipped ({}{})",
            skipped.len(),
            skipped.len() + kept,
            path.display(),
            first.join("; "),
            if skipped.len() > 3 { "; ..." } else { "" }
        ),
    })
}

pub(crate) fn load_tokenizer(path: &str) -> Result<TokenizerFile, ConfigError> {
    TokenizerFile::load(Path::new(path)).map_err(|e| invalid("data.tokenizer", e.to_string()))
}

pub(crate) fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message,
    }
}

/// The words that follow the lead in a prompt of `tokens` tokens.
pub(crate) fn push_words(out: &mut String, tokens: u32) {
    for i in 1..tokens.max(1) {
        out.push(' ');
        out.push_str(WORDS[i as usize % WORDS.len()]);
    }
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

pub(crate) fn synthetic_lengths(data: &Data) -> [Length; 2] {
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
    use std::path::PathBuf;

    #[test]
    fn feeder_warnings_count_in_the_singular_and_the_plural() {
        let words = |starved, inexact| {
            super::feeder_warnings(
                starved,
                ("prompt was", "prompts were"),
                "their lag includes it",
                inexact,
                ("prompt", "prompts"),
                "could not be built and went out at another length",
            )
            .into_iter()
            .map(|w| w.message)
            .collect::<Vec<_>>()
        };
        assert!(words(0, 0).is_empty());
        assert_eq!(
            words(1, 1),
            [
                "1 prompt was built on the request path because the feeder thread fell behind; their lag includes it",
                "1 prompt could not be built and went out at another length"
            ]
        );
        assert!(words(3, 2)[0].starts_with("3 prompts were built"));
        assert!(words(3, 2)[1].starts_with("2 prompts could not"));
    }

    use super::*;

    fn tokenizer_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tokenizer")
    }

    fn config(data: &str) -> Config {
        let text = format!(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n[data]\n{data}"
        );
        Config::load(&text, bench_core::config::ConfigFormat::Toml, &[]).unwrap()
    }

    fn workload(config: &Config, label: &str, extra: &Map<String, Value>) -> Workload {
        let options = BodyOptions {
            stream: true,
            ignore_eos: true,
            extra_body: extra,
        };
        Workload::new(config, label, &options).unwrap()
    }

    fn content(p: &Prepared) -> String {
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        v["messages"][0]["content"].as_str().unwrap().to_owned()
    }

    /// Words per prompt (approximate mode) and max_tokens of the next request.
    fn lengths(w: &Workload) -> (usize, u64) {
        let p = w.next();
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        (
            content(&p).split(' ').count(),
            v["max_tokens"].as_u64().unwrap(),
        )
    }

    #[test]
    fn bodies_carry_a_unique_lead_and_the_requested_lengths() {
        let config = config(
            "kind = \"synthetic\"\nprompt_tokens = 5\noutput_tokens = 7\napproximate = true\n",
        );
        let mut extra = Map::new();
        extra.insert("temperature".to_owned(), json!(0));
        let workload = workload(&config, "x", &extra);
        assert_eq!(workload.warnings[0].code, "approximate_tokens");
        let (a, b) = (workload.next(), workload.next());
        assert_eq!(content(&a).split(' ').count(), 5);
        assert!(content(&a).starts_with("req-0 ") && content(&b).starts_with("req-1 "));
        assert_eq!((a.id.as_str(), b.id.as_str()), ("req-0", "req-1"));
        let a: Value = serde_json::from_slice(&a.body).unwrap();
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
        let config = config("kind = \"scenario\"\nscenarios = [\"D(12,3)\", \"U(5,9)/(4,6)\", \"N(40,5)/(20,2)\"]\napproximate = true\n");
        let d = workload(&config, "D(12,3)", &Map::new());
        assert_eq!(lengths(&d), (12, 3));
        let u = workload(&config, "U(5,9)/(4,6)", &Map::new());
        let seen: Vec<(usize, u64)> = (0..200).map(|_| lengths(&u)).collect();
        assert!(seen
            .iter()
            .all(|&(i, o)| (5..=9).contains(&i) && (4..=6).contains(&o)));
        assert!(
            seen.iter().any(|s| s.0 == 5) && seen.iter().any(|s| s.0 == 9),
            "the whole range is drawn"
        );
        let n = workload(&config, "N(40,5)/(20,2)", &Map::new());
        let mean = (0..2000).map(|_| lengths(&n).0 as f64).sum::<f64>() / 2000.0;
        assert!((mean - 40.0).abs() < 1.0, "{mean}");
    }

    #[test]
    fn bounds_alone_clamp_a_constant_and_bounds_without_a_length_draw_uniformly() {
        let fixed = config("kind = \"synthetic\"\nprompt_tokens = 10\nprompt_tokens_min = 5\nprompt_tokens_max = 15\noutput_tokens = 4\napproximate = true\n");
        let w = workload(&fixed, "x", &Map::new());
        assert!((0..50).all(|_| lengths(&w) == (10, 4)));
        assert_eq!(
            side(None, None, Some(5), Some(15)),
            Length::Uniform { low: 5, high: 15 }
        );
        assert_eq!(side(Some(30), None, Some(5), Some(15)), Length::Fixed(15));
    }

    #[test]
    fn token_exact_prompts_come_from_the_feeder_with_their_ids_in_order() {
        let config = config(&format!(
            "kind = \"synthetic\"\nprompt_tokens = 64\noutput_tokens = 4\ntokenizer = {:?}\n",
            tokenizer_dir().display().to_string()
        ));
        let w = workload(&config, "x", &Map::new());
        assert!(w.warnings.is_empty(), "{:?}", w.warnings);
        let tokenizer = TokenizerFile::load(&tokenizer_dir()).unwrap();
        // Let the feeder get ahead, so these come from its queue.
        std::thread::sleep(std::time::Duration::from_millis(100));
        for n in 0..20 {
            let p = w.next();
            assert_eq!(p.id, format!("req-{n}"));
            assert!(content(&p).starts_with(&format!("req-{n} ")));
            assert_eq!(tokenizer.count(&content(&p)).unwrap(), 64);
            assert_eq!(p.prompt_tokens, 64);
        }
        assert!(w.run_warnings().is_empty(), "{:?}", w.run_warnings());
    }

    /// llama.cpp keeps earlier prompts in its cache: a second run must not repeat them.
    #[test]
    fn another_run_sends_other_prompt_texts_of_the_same_lengths() {
        let tokenizer = TokenizerFile::load(&tokenizer_dir()).unwrap();
        for data in [
            "approximate = true".to_owned(),
            format!("tokenizer = {:?}", tokenizer_dir().display().to_string()),
        ] {
            let config = config(&format!(
                "kind = \"synthetic\"\nprompt_tokens = 40\noutput_tokens = 4\n{data}\n"
            ));
            let (one, two) = (
                workload(&config, "x", &Map::new()),
                workload(&config, "x", &Map::new()),
            );
            let (first, second) = (one.next(), two.next());
            let (a, b) = (content(&first), content(&second));
            assert_ne!(a, b, "{data}");
            // The lead, then whitespace: a space, or the corpus's own line break when the
            // run's starting point falls after one. The lead is the request's id, which is
            // not always req-0: a request taken before the feeder's first prompt is ready is
            // built on the spot under the next id.
            for (prompt, id) in [(&a, &first.id), (&b, &second.id)] {
                let rest = prompt.strip_prefix(id.as_str()).unwrap_or_default();
                assert!(rest.starts_with(char::is_whitespace), "{prompt}");
            }
            assert_eq!(
                a.split(' ').count() == 40,
                b.split(' ').count() == 40,
                "{data}"
            );
            if !data.starts_with("approximate") {
                assert_eq!(tokenizer.count(&a).unwrap(), 40);
                assert_eq!(tokenizer.count(&b).unwrap(), 40);
            }
        }
    }

    #[test]
    fn samples_are_prepared_once_and_sent_in_a_cycle_under_fresh_ids() {
        for tokenizer in [
            "approximate = true".to_owned(),
            format!("tokenizer = {:?}", tokenizer_dir().display().to_string()),
        ] {
            let config = config(&format!(
                "kind = \"synthetic\"\nprompt_tokens = 20\noutput_tokens = 4\nsamples = 3\n{tokenizer}\n"
            ));
            let w = workload(&config, "x", &Map::new());
            let sent: Vec<Prepared> = (0..7).map(|_| w.next()).collect();
            let prompts: Vec<String> = sent.iter().map(content).collect();
            assert_eq!(prompts[0], prompts[3]);
            assert_eq!(prompts[1], prompts[4]);
            assert_ne!(prompts[0], prompts[1]);
            assert_eq!(sent[6].id, "req-6");
        }
    }
}
