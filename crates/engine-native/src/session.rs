//! Multi-turn sessions (`data.turns`, a file's `data.conversations`): each session is one
//! simulated chat user who sends a script of user messages, one per turn, each after the
//! previous answer and a think time, with the whole conversation so far: every earlier user
//! message and the answer the server actually gave to it, so a server's prefix cache sees
//! what it would see from a real chat client.
//!
//! - Synthetic scripts are built on a feeder thread ahead of the schedule (token-exact with a
//!   tokenizer, approximate words without); a file's conversations are prepared before the
//!   benchmark and started in a cycle.
//! - A turn's request is built when the previous answer is in (the history is only known
//!   then): its body is the chat body of [`crate::workload::body_keys`] with the history as
//!   `messages`.
//! - Turn `k` of session `n` has the id `s<n>-t<k>` (its `x-request-id` after the run's tag).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bench_core::config::limits::duration_from_secs;
use bench_core::config::{Config, ThinkDistribution};
use bench_core::schema::Warning;
use bench_core::ConfigError;
use bench_data::{Dataset, PromptBuilder, TokenizerFile};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp1};
use serde_json::{json, Map, Value};

use crate::client::{Exchange, Prepared};
use crate::workload::{
    body_keys, invalid, load_tokenizer, push_words, synthetic_lengths, BodyOptions, Length,
    BYTES_PER_TOKEN,
};

/// Scripts the feeder keeps ready, at most.
const FEED_SCRIPTS: usize = 64;

/// One session's user messages and the output length of each turn.
#[derive(Debug)]
pub(crate) struct Script {
    /// Each turn's user message, with its token count.
    messages: Vec<(String, u32)>,
    /// Each turn's `max_tokens`; `None`: the server decides (a file row without a length).
    outputs: Vec<Option<u32>>,
}

/// Where sessions' scripts come from.
#[derive(Debug)]
enum Scripts {
    /// Synthetic, from a feeder thread.
    Built(Feeder),
    /// A file's conversations, in a cycle.
    Rows(Vec<Arc<Script>>),
}

#[derive(Debug)]
pub(crate) struct Sessions {
    scripts: Scripts,
    /// The body's keys with a `max_tokens`, and without one.
    with_length: Map<String, Value>,
    without_length: Map<String, Value>,
    /// `extra_body` sets `max_tokens` itself: leave it.
    fixed_max_tokens: bool,
    think: Think,
    rng: Mutex<StdRng>,
    next: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Think {
    Constant(Duration),
    Exponential(f64),
}

impl Sessions {
    /// The sessions of `config`'s data (synthetic `turns` or a file's `conversations`).
    /// Blocking: call it off the async runtime.
    pub(crate) fn new(
        config: &Config,
        options: &BodyOptions<'_>,
        run: u64,
        warnings: &mut Vec<Warning>,
    ) -> Result<Self, ConfigError> {
        let data = &config.data;
        let mean = data.think_seconds.unwrap_or(0.0);
        let think = match data.think_distribution {
            Some(ThinkDistribution::Exponential) => Think::Exponential(mean),
            Some(ThinkDistribution::Constant) | None => Think::Constant(duration_from_secs(mean)),
        };
        let placeholder = ("messages", Value::Array(Vec::new()));
        let scripts = match data.turns {
            Some(turns) => Scripts::Built(Feeder::start(Maker::new(config, turns, run, warnings)?)),
            None => Scripts::Rows(file_scripts(config, warnings)?),
        };
        Ok(Self {
            scripts,
            with_length: body_keys(config, options, placeholder.clone(), Some(json!(1))),
            without_length: body_keys(config, options, placeholder, None),
            fixed_max_tokens: options.extra_body.contains_key("max_tokens"),
            think,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x7417)),
            next: AtomicU64::new(0),
        })
    }

    /// A new session.
    pub(crate) fn start(&self) -> Conversation {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let script = match &self.scripts {
            Scripts::Built(feeder) => feeder.take(n),
            Scripts::Rows(rows) => rows[(n % rows.len() as u64) as usize].clone(),
        };
        Conversation {
            n,
            script,
            messages: Vec::new(),
            history_tokens: 0,
            sent: 0,
        }
    }

    /// A think time, drawn.
    pub(crate) fn think(&self) -> Duration {
        match self.think {
            Think::Constant(d) => d,
            Think::Exponential(mean) => {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                let draw: f64 = Exp1.sample(&mut *rng);
                duration_from_secs(draw * mean)
            }
        }
    }

    /// Warnings about how the sessions were built while they ran.
    pub(crate) fn run_warnings(&self) -> Vec<Warning> {
        let Scripts::Built(feeder) = &self.scripts else {
            return Vec::new();
        };
        crate::workload::feeder_warnings(
            feeder.starved.load(Ordering::Relaxed),
            ("session's messages were", "sessions' messages were"),
            "their first turn's schedule lag includes the build",
            feeder.maker.inexact.load(Ordering::Relaxed),
            ("session message", "session messages"),
            "could not be built to the token count asked and went out as words of about one token each",
        )
    }

    fn body(&self, messages: &[Value], output: Option<u32>) -> Bytes {
        let mut body = match output {
            Some(_) => self.with_length.clone(),
            None => self.without_length.clone(),
        };
        body.insert("messages".to_owned(), Value::Array(messages.to_vec()));
        if let (Some(max), false) = (output, self.fixed_max_tokens) {
            body.insert("max_tokens".to_owned(), json!(max.max(1)));
        }
        Bytes::from(Value::Object(body).to_string())
    }
}

/// One session in progress: the conversation so far.
#[derive(Debug)]
pub(crate) struct Conversation {
    n: u64,
    script: Arc<Script>,
    /// The chat messages sent and received so far.
    messages: Vec<Value>,
    /// Their tokens as the client counts them (user messages, answers' output tokens).
    history_tokens: u64,
    /// Turns sent.
    sent: u32,
}

impl Conversation {
    /// The next turn's request: the history and the next user message, which joins the
    /// history; `None` after the last turn.
    pub(crate) fn next_turn(&mut self, sessions: &Sessions) -> Option<Prepared> {
        let (text, tokens) = self.script.messages.get(self.sent as usize)?;
        let output = self
            .script
            .outputs
            .get(self.sent as usize)
            .copied()
            .flatten();
        self.messages
            .push(json!({ "role": "user", "content": text }));
        self.history_tokens += u64::from(*tokens);
        self.sent += 1;
        Some(Prepared {
            body: sessions.body(&self.messages, output),
            prompt_tokens: u32::try_from(self.history_tokens).unwrap_or(u32::MAX),
            id: format!("s{}-t{}", self.n, self.sent),
            turn: Some(self.sent),
        })
    }

    /// The last turn's answer came: it joins the history as received.
    pub(crate) fn answered(&mut self, exchange: &Exchange) {
        let answer = exchange.answer.as_deref().unwrap_or_default();
        self.messages
            .push(json!({ "role": "assistant", "content": answer }));
        self.history_tokens += output_tokens(exchange);
    }

    /// Turns sent so far.
    pub(crate) fn sent(&self) -> u32 {
        self.sent
    }

    /// Whether every turn of the script was sent.
    pub(crate) fn finished(&self) -> bool {
        self.sent as usize >= self.script.messages.len()
    }
}

/// A response's output tokens as the aggregator counts them: the server's usage, else the
/// content chunks.
pub(crate) fn output_tokens(exchange: &Exchange) -> u64 {
    exchange
        .usage
        .and_then(|u| u.completion_tokens)
        .unwrap_or(u64::from(exchange.content_chunks))
}

/// Builds synthetic scripts.
#[derive(Debug)]
struct Maker {
    turns: u32,
    /// Prompt length of the first message, of each later one, and output length per turn.
    first: Length,
    later: Length,
    output: Length,
    /// Token-exact text: the builder of the first message (with `prefix_tokens`' shared
    /// prefix), and of the later ones when that differs; `None`: approximate words.
    builders: Option<(PromptBuilder, Option<PromptBuilder>)>,
    rng: Mutex<StdRng>,
    run: u64,
    inexact: AtomicU64,
}

impl Maker {
    fn new(
        config: &Config,
        turns: u32,
        run: u64,
        warnings: &mut Vec<Warning>,
    ) -> Result<Self, ConfigError> {
        let data = &config.data;
        let [first, output] = synthetic_lengths(data);
        let later = data.turn_prompt_tokens.map_or(first, Length::Fixed);
        let builders = match &data.tokenizer {
            None => {
                warnings.push(Warning {
                    code: "approximate_tokens".to_owned(),
                    message: "data.approximate = true: session messages are built from words, about one token each, not counted with a tokenizer; \
                              prompt_tokens reports the server's usage.prompt_tokens when it sends one"
                        .to_owned(),
                });
                None
            }
            Some(path) => {
                let prefix = data.prefix_tokens.unwrap_or(0);
                let builder = |prefix| {
                    PromptBuilder::new(load_tokenizer(path)?, prefix)
                        .map_err(|e| invalid("data.prefix_tokens", e.to_string()))
                };
                let later = if prefix > 0 { Some(builder(0)?) } else { None };
                Some((builder(prefix)?, later))
            }
        };
        let maker = Self {
            turns,
            first,
            later,
            output,
            builders,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5E55)),
            run,
            inexact: AtomicU64::new(0),
        };
        // Lengths the tokenizer cannot meet stop the run before it starts.
        if let Some((first_builder, later_builder)) = &maker.builders {
            first_builder
                .build("s0-t1", first.mean().round().max(1.0) as u32, 0)
                .map_err(|e| invalid("data.prompt_tokens", e.to_string()))?;
            later_builder
                .as_ref()
                .unwrap_or(first_builder)
                .build("s0-t2", later.mean().round().max(1.0) as u32, 0)
                .map_err(|e| invalid("data.turn_prompt_tokens", e.to_string()))?;
        }
        Ok(maker)
    }

    fn make(&self, n: u64) -> Script {
        let mut messages = Vec::with_capacity(self.turns as usize);
        let mut outputs = Vec::with_capacity(self.turns as usize);
        for k in 1..=self.turns {
            let (tokens, output) = {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                let side = if k == 1 { self.first } else { self.later };
                (
                    side.draw(&mut rng).max(1),
                    self.output.draw(&mut rng).max(1),
                )
            };
            let lead = format!("s{n}-t{k}");
            let built = self.builders.as_ref().and_then(|(first, later)| {
                let builder = if k == 1 {
                    first
                } else {
                    later.as_ref().unwrap_or(first)
                };
                let variant = (n << 10 | u64::from(k)) ^ self.run;
                match builder.build(&lead, tokens, variant) {
                    Ok(text) => Some(text),
                    Err(_) => {
                        self.inexact.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            });
            let text = built.unwrap_or_else(|| {
                // The run's mark after the lead, so an earlier run's cached prompts differ.
                let mut text = format!("{lead} r{:x}", self.run >> 40);
                push_words(&mut text, tokens.saturating_sub(1));
                text
            });
            messages.push((text, tokens));
            outputs.push(Some(output));
        }
        Script { messages, outputs }
    }
}

/// A thread that builds scripts ahead of the schedule; a session that finds none ready builds
/// its own (counted).
#[derive(Debug)]
struct Feeder {
    maker: Arc<Maker>,
    ready: Mutex<Receiver<(u64, Script)>>,
    starved: AtomicU64,
}

impl Feeder {
    fn start(maker: Maker) -> Self {
        let (sender, ready) = mpsc::sync_channel(FEED_SCRIPTS);
        let maker = Arc::new(maker);
        let feeding = maker.clone();
        let spawned = std::thread::Builder::new()
            .name("session-feeder".to_owned())
            .spawn(move || feed(&feeding, &sender));
        if let Err(error) = spawned {
            tracing::warn!("cannot start the session feeder thread ({error}); session messages are built on the request path");
        }
        Self {
            maker,
            ready: Mutex::new(ready),
            starved: AtomicU64::new(0),
        }
    }

    /// The script of session `n`: the feeder's next one (built for its own number, which
    /// only names the messages), or one built now.
    fn take(&self, n: u64) -> Arc<Script> {
        let taken = self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_recv();
        match taken {
            Ok((_, script)) => Arc::new(script),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                self.starved.fetch_add(1, Ordering::Relaxed);
                // Numbers far from the feeder's, so no two sessions share their leads.
                Arc::new(self.maker.make(n | 1 << 40))
            }
        }
    }
}

fn feed(maker: &Maker, sender: &SyncSender<(u64, Script)>) {
    for n in 0.. {
        if sender.send((n, maker.make(n))).is_err() {
            return;
        }
    }
}

/// Every usable row of the data file as a session of its human turns.
fn file_scripts(
    config: &Config,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Arc<Script>>, ConfigError> {
    let data = &config.data;
    let path = data.path.as_deref().unwrap_or_default();
    let dataset = Dataset::load(Path::new(path), data.prompt_column.as_deref())
        .map_err(|e| invalid("data.path", e.to_string()))?;
    let tokenizer: Option<TokenizerFile> =
        data.tokenizer.as_deref().map(load_tokenizer).transpose()?;
    let count = |text: &str| -> Result<u32, ConfigError> {
        match &tokenizer {
            Some(t) => t
                .count(text)
                .map_err(|e| invalid("data.tokenizer", e.to_string())),
            None => Ok(u32::try_from(text.len().div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX)),
        }
    };
    if !dataset.skipped.is_empty() {
        warnings.push(Warning {
            code: "data_rows_skipped".to_owned(),
            message: format!(
                "{} of {} rows of {} were skipped (first: line {}: {})",
                dataset.skipped.len(),
                dataset.skipped.len() + dataset.rows.len(),
                dataset.path.display(),
                dataset.skipped[0].line,
                dataset.skipped[0].reason
            ),
        });
    }
    let rows = crate::shard::rows(config, dataset.rows, "data.path")?;
    let mut scripts = Vec::with_capacity(rows.len());
    let mut single = 0usize;
    for row in &rows {
        let mut messages = vec![(row.prompt.clone(), count(&row.prompt)?)];
        for text in &row.later_turns {
            messages.push((text.clone(), count(text)?));
        }
        if messages.len() == 1 {
            single += 1;
        }
        let output = data.output_tokens.or(row.output_tokens);
        scripts.push(Arc::new(Script {
            outputs: vec![output; messages.len()],
            messages,
        }));
    }
    if scripts.is_empty() {
        return Err(invalid(
            "data.path",
            format!("{} holds no usable conversation", dataset.path.display()),
        ));
    }
    if single == scripts.len() {
        warnings.push(Warning {
            code: "single_turn_conversations".to_owned(),
            message: format!("data.conversations = true, but no row of {} has more than one human turn: every session is a single request (conversations come from `conversations` or `messages` rows)", dataset.path.display()),
        });
    }
    Ok(scripts)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Instant;

    use bench_core::config::ConfigFormat;

    use super::*;
    use crate::client::{Outcome, ReadTiming};

    fn tokenizer_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tokenizer")
    }

    fn sessions(data: &str) -> (Sessions, Vec<Warning>) {
        let text = format!(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 1\n[data]\n{data}"
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let extra = Map::new();
        let options = BodyOptions {
            stream: true,
            ignore_eos: true,
            extra_body: &extra,
        };
        let mut warnings = Vec::new();
        let sessions = Sessions::new(&config, &options, 7, &mut warnings).unwrap();
        (sessions, warnings)
    }

    fn answer(text: &str, tokens: u64) -> Exchange {
        let now = Instant::now();
        Exchange {
            intended: now,
            started: now,
            sent: now,
            first_token: Some(now),
            last_token: Some(now),
            end: now,
            gaps_ms: Vec::new(),
            content_chunks: tokens as u32,
            phases: Default::default(),
            usage: None,
            server_timings: None,
            client_prompt_tokens: 0,
            http_version: None,
            connection_setup: None,
            timing: ReadTiming::default(),
            outcome: Outcome::Successful,
            turn: Some(1),
            answer: Some(text.to_owned()),
        }
    }

    fn body(p: &Prepared) -> Value {
        serde_json::from_slice(&p.body).unwrap()
    }

    #[test]
    fn each_turn_carries_the_history_with_the_answers_and_a_token_exact_message() {
        let (sessions, warnings) = sessions(&format!(
            "kind = \"synthetic\"\nprompt_tokens = 30\nturn_prompt_tokens = 9\noutput_tokens = 5\nturns = 3\ntokenizer = {:?}\n",
            tokenizer_dir().display().to_string()
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        let tokenizer = TokenizerFile::load(&tokenizer_dir()).unwrap();
        let mut conversation = sessions.start();
        let first = conversation.next_turn(&sessions).unwrap();
        assert_eq!((first.id.as_str(), first.turn), ("s0-t1", Some(1)));
        let b = body(&first);
        assert_eq!(b["max_tokens"], 5);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let messages = b["messages"].as_array().unwrap().clone();
        assert_eq!(messages.len(), 1);
        let text = messages[0]["content"].as_str().unwrap();
        // The lead is `s<n>-t1`: `s0-t1` from the feeder thread, or a number far from the
        // feeder's when the test asked before the feeder had built it (a loaded machine).
        let lead = text.split(' ').next().unwrap();
        assert!(lead.starts_with('s') && lead.ends_with("-t1"), "{text}");
        assert_eq!(tokenizer.count(text).unwrap(), 30);
        assert!(!conversation.finished());
        conversation.answered(&answer(" an \"answer\"", 5));
        let second = conversation.next_turn(&sessions).unwrap();
        assert_eq!((second.id.as_str(), second.turn), ("s0-t2", Some(2)));
        assert_eq!(second.prompt_tokens, 30 + 5 + 9);
        let later = body(&second)["messages"].as_array().unwrap().clone();
        assert_eq!(later.len(), 3);
        assert_eq!(later[0], messages[0]);
        assert_eq!(
            later[1],
            json!({"role": "assistant", "content": " an \"answer\""})
        );
        assert_eq!(later[2]["role"], "user");
        assert_eq!(
            tokenizer
                .count(later[2]["content"].as_str().unwrap())
                .unwrap(),
            9
        );
        conversation.answered(&answer("two", 1));
        let third = conversation.next_turn(&sessions).unwrap();
        assert_eq!(body(&third)["messages"].as_array().unwrap().len(), 5);
        assert!(conversation.finished() && conversation.next_turn(&sessions).is_none());
        assert_eq!(conversation.sent(), 3);
        // Another session has other messages.
        let mut other = sessions.start();
        let other_first = body(&other.next_turn(&sessions).unwrap());
        assert_ne!(other_first["messages"][0], messages[0]);
        assert!(
            sessions.run_warnings().is_empty()
                || sessions.run_warnings()[0].code == "prompts_built_late"
        );
    }

    #[test]
    fn think_times_are_constant_or_exponential_around_their_mean() {
        let data = "kind = \"synthetic\"\nprompt_tokens = 5\noutput_tokens = 2\napproximate = true\nturns = 2\nthink_seconds = 0.5\n";
        let (constant, warnings) = sessions(data);
        assert_eq!(warnings[0].code, "approximate_tokens");
        assert!((0..10).all(|_| constant.think() == Duration::from_millis(500)));
        let (exponential, _) = sessions(&format!("{data}think_distribution = \"exponential\"\n"));
        let draws: Vec<f64> = (0..4000)
            .map(|_| exponential.think().as_secs_f64())
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        assert!(draws.iter().any(|d| *d < 0.05) && draws.iter().any(|d| *d > 1.5));
    }

    #[test]
    fn a_files_conversations_are_sessions_of_their_human_turns_in_a_cycle() {
        let path = std::env::temp_dir().join(format!(
            "llm-bench-session-test-{}.jsonl",
            std::process::id()
        ));
        std::fs::write(
            &path,
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"name a river\"}, {\"from\": \"gpt\", \"value\": \"the Rhine\"}, {\"from\": \"human\", \"value\": \"a longer one?\"}]}\n\
             {\"prompt\": \"just one\", \"output_tokens\": 3}\n",
        )
        .unwrap();
        let (sessions, _) = sessions(&format!(
            "kind = \"file\"\npath = {:?}\nconversations = true\n",
            path.display().to_string()
        ));
        let mut first = sessions.start();
        let t1 = body(&first.next_turn(&sessions).unwrap());
        assert_eq!(t1["messages"][0]["content"], "name a river");
        assert!(t1.get("max_tokens").is_none() && t1.get("ignore_eos").is_none());
        first.answered(&answer("the Nile", 2));
        let t2 = body(&first.next_turn(&sessions).unwrap());
        let contents: Vec<&str> = t2["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(
            contents,
            ["name a river", "the Nile", "a longer one?"],
            "the server's answer, not the file's"
        );
        assert!(first.finished());
        let mut second = sessions.start();
        assert_eq!(body(&second.next_turn(&sessions).unwrap())["max_tokens"], 3);
        assert!(second.finished());
        let mut third = sessions.start();
        assert_eq!(
            body(&third.next_turn(&sessions).unwrap())["messages"][0]["content"],
            "name a river"
        );
        let _ = std::fs::remove_file(&path);
    }
}
