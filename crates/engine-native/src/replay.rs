//! Trace replay: the requests of a recorded trace (`bench_data::Trace`), each sent at its
//! recorded offset divided by `profile.speedup`, from `profile.start_seconds` into the trace.
//!
//! Rows with a prompt length get a token-exact prompt: one shared block of
//! `data.block_tokens` per leading `hash_ids` entry (the same id, the same text, so the
//! trace's prefix-cache structure is reproduced), then a unique tail (`req-<n>` and corpus
//! words). Prompts are built on a feeder thread ahead of the schedule, in trace order.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use bench_core::config::Config;
use bench_core::schema::Warning;
use bench_core::ConfigError;
use bench_data::{PromptBuilder, Trace, TracePrompt, TraceRow};

use crate::client::Prepared;
use crate::workload::Template;

/// Tokens per `hash_ids` block when `data.block_tokens` is not given (Mooncake's).
pub(crate) const DEFAULT_BLOCK_TOKENS: u32 = 512;
/// Prepared requests the feeder keeps ready.
const FEED_REQUESTS: usize = 256;
/// Block texts kept for reuse; past this the cache starts over (a block is rebuilt the same).
const CACHED_BLOCKS: usize = 4096;
/// Bytes per approximated token for a text row counted without a tokenizer.
const BYTES_PER_TOKEN: usize = 4;

/// Builds the request of each trace row.
#[derive(Debug)]
struct Maker {
    rows: Vec<TraceRow>,
    builder: Option<PromptBuilder>,
    block_tokens: u32,
    template: Template,
    unlimited: Template,
    output_override: Option<u32>,
    run: u64,
    blocks: Mutex<HashMap<u64, String>>,
    inexact: AtomicU64,
}

impl Maker {
    fn block(&self, builder: &PromptBuilder, id: u64) -> Option<String> {
        if let Some(text) = self.lock().get(&id) {
            return Some(text.clone());
        }
        let variant = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.run;
        let text = builder.block(self.block_tokens, variant).ok()?;
        let mut cache = self.lock();
        if cache.len() >= CACHED_BLOCKS {
            cache.clear();
        }
        cache.insert(id, text.clone());
        Some(text)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn make(&self, n: u64) -> Prepared {
        let row = &self.rows[n as usize % self.rows.len()];
        let id = format!("req-{n}");
        let (prompt, prompt_tokens) = match (&row.prompt, &self.builder) {
            (TracePrompt::Text(text), Some(builder)) => (
                text.clone(),
                builder.tokenizer().count(text).unwrap_or_default(),
            ),
            (TracePrompt::Text(text), None) => (
                text.clone(),
                u32::try_from(text.len().div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX),
            ),
            (TracePrompt::Tokens(tokens), Some(builder)) => {
                (self.exact(builder, row, &id, *tokens, n), *tokens)
            }
            // Refused when the workload is made: lengths need a tokenizer.
            (TracePrompt::Tokens(tokens), None) => (id.clone(), *tokens),
        };
        let body = match self.output_override.or(row.output_tokens) {
            Some(output) => self.template.render(&prompt, output),
            None => self.unlimited.render(&prompt, 0),
        };
        Prepared {
            body,
            prompt_tokens,
            id,
            turn: None,
        }
    }

    /// The shared blocks of the row's leading `hash_ids` that fit whole, then a unique tail.
    fn exact(
        &self,
        builder: &PromptBuilder,
        row: &TraceRow,
        id: &str,
        tokens: u32,
        n: u64,
    ) -> String {
        let room = tokens.saturating_sub(builder.special_tokens()) / self.block_tokens.max(1);
        let shared = row.hash_ids.len().min(room as usize);
        let mut head = String::new();
        for &hash in &row.hash_ids[..shared] {
            match self.block(builder, hash) {
                Some(text) => head.push_str(&text),
                None => break,
            }
        }
        builder
            .build_after(&head, id, tokens, n ^ self.run)
            .or_else(|_| builder.build(id, tokens, n ^ self.run))
            .unwrap_or_else(|_| {
                self.inexact.fetch_add(1, Ordering::Relaxed);
                id.to_owned()
            })
    }
}

/// A trace's requests, in order, from a feeder thread; and their send offsets.
#[derive(Debug)]
pub(crate) struct Replay {
    maker: Arc<Maker>,
    ready: Mutex<Receiver<(u64, Prepared)>>,
    taken: AtomicU64,
    starved: AtomicU64,
    /// Seconds from the benchmark's start to each request's send, in order.
    pub(crate) offsets: Arc<[f64]>,
}

impl Replay {
    /// Reads the trace and starts building its prompts. Blocking: call it off the runtime.
    pub(crate) fn new(
        config: &Config,
        template: Template,
        unlimited: Template,
        builder: Option<PromptBuilder>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Self, ConfigError> {
        let data = &config.data;
        let path = data.path.as_deref().unwrap_or_default();
        let trace =
            Trace::load(Path::new(path)).map_err(|e| invalid("data.path", e.to_string()))?;
        warnings.extend(crate::workload::skipped_rows_warning(
            &trace.skipped,
            trace.rows.len(),
            &trace.path,
        ));
        let lengths = trace
            .rows
            .iter()
            .any(|r| matches!(r.prompt, TracePrompt::Tokens(_)));
        if lengths && builder.is_none() {
            return Err(ConfigError::MissingKey {
                key: "data.tokenizer".to_owned(),
                hint: Some(format!("the trace {path} gives prompt lengths (`input_length`), which are built token-exact with a local tokenizer")),
            });
        }
        let speedup = config.profile.speedup.unwrap_or(1.0);
        let start = config.profile.start_seconds.unwrap_or(0.0);
        let origin = trace.rows[0].timestamp_ms;
        let span = (trace.rows[trace.rows.len() - 1].timestamp_ms - origin) / 1000.0;
        let timed: Vec<(f64, TraceRow)> = trace
            .rows
            .into_iter()
            .filter_map(|row| {
                let recorded = (row.timestamp_ms - origin) / 1000.0 - start;
                (recorded >= 0.0).then(|| (recorded / speedup, row))
            })
            .collect();
        if timed.is_empty() {
            return Err(invalid(
                "profile.start_seconds",
                format!("{start} s skips the whole trace, which spans {span} s; give less"),
            ));
        }
        // A shard keeps its rows at their times in the whole trace: together the shards send
        // the trace as recorded.
        let (offsets, rows): (Vec<f64>, Vec<TraceRow>) =
            crate::shard::rows(config, timed, "data.path")?
                .into_iter()
                .unzip();
        let maker = Arc::new(Maker {
            rows,
            builder,
            block_tokens: data.block_tokens.unwrap_or(DEFAULT_BLOCK_TOKENS),
            template,
            unlimited,
            output_override: data.output_tokens,
            run: rand::random(),
            blocks: Mutex::new(HashMap::new()),
            inexact: AtomicU64::new(0),
        });
        let (sender, ready) = mpsc::sync_channel(FEED_REQUESTS);
        let feeding = maker.clone();
        let spawned = std::thread::Builder::new()
            .name("trace-feeder".to_owned())
            .spawn(move || {
                for n in 0..feeding.rows.len() as u64 {
                    if sender.send((n, feeding.make(n))).is_err() {
                        return;
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the trace feeder thread ({error}); prompts are built on the request path");
        }
        Ok(Self {
            maker,
            ready: Mutex::new(ready),
            taken: AtomicU64::new(0),
            starved: AtomicU64::new(0),
            offsets: offsets.into(),
        })
    }

    /// The next request in trace order.
    pub(crate) fn next(&self) -> Prepared {
        let n = self.taken.fetch_add(1, Ordering::Relaxed);
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match ready.try_recv() {
                // One built on the request path earlier, already sent.
                Ok((built, _)) if built < n => continue,
                Ok((_, prepared)) => return prepared,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        drop(ready);
        self.starved.fetch_add(1, Ordering::Relaxed);
        self.maker.make(n)
    }

    pub(crate) fn run_warnings(&self) -> Vec<Warning> {
        crate::workload::feeder_warnings(
            self.starved.load(Ordering::Relaxed),
            ("trace prompt was", "trace prompts were"),
            "their schedule lag includes the build",
            self.maker.inexact.load(Ordering::Relaxed),
            ("trace prompt", "trace prompts"),
            "could not be built to the token count asked and went out as the request id alone",
        )
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bench_core::config::ConfigFormat;
    use serde_json::{Map, Value};

    use super::*;
    use crate::workload::{BodyOptions, Workload};

    fn workload(trace: &str, profile: &str) -> Result<Workload, ConfigError> {
        static FILES: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "llm-bench-replay-{}-{}.jsonl",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, trace).unwrap();
        let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tokenizer");
        let text = format!(
            "[profile]\nkind = \"replay\"\n{profile}\n[constraints]\nmax_seconds = 5\n[data]\nkind = \"trace\"\npath = \"{}\"\ntokenizer = \"{}\"\nblock_tokens = 32\n",
            path.display(),
            tokenizer.display()
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let extra = Map::new();
        let options = BodyOptions {
            stream: true,
            ignore_eos: true,
            extra_body: &extra,
        };
        let made = Workload::new(&config, "t", &options);
        let _ = std::fs::remove_file(&path);
        made
    }

    fn content(p: &Prepared) -> String {
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        v["messages"][0]["content"].as_str().unwrap().to_owned()
    }

    /// Equal leading `hash_ids` give exactly that many equal blocks, byte for byte; the rest
    /// of each prompt is its own; every prompt has the trace's length.
    #[test]
    fn shared_hash_ids_are_shared_blocks_byte_for_byte() {
        let w = workload(
            "{\"timestamp\": 0, \"input_length\": 200, \"output_length\": 3, \"hash_ids\": [1, 2, 3]}\n\
             {\"timestamp\": 10, \"input_length\": 150, \"output_length\": 3, \"hash_ids\": [1, 2, 4]}\n\
             {\"timestamp\": 20, \"input_length\": 40, \"hash_ids\": [1, 2, 5]}\n",
            "",
        )
        .unwrap();
        let replay = w.replay().expect("a trace workload");
        let builder = replay.maker.builder.as_ref().unwrap();
        let block = |id| replay.maker.block(builder, id).unwrap();
        let (a, b, c) = (w.next(), w.next(), w.next());
        let (a, b, c) = (content(&a), content(&b), content(&c));
        let shared = block(1) + &block(2);
        assert!(a.starts_with(&(shared.clone() + &block(3))), "{a}");
        assert!(b.starts_with(&(shared.clone() + &block(4))), "{b}");
        assert_ne!(block(3), block(4));
        // The common prefix ends inside the third block: exactly two blocks are shared.
        let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(
            common >= shared.len() && common < shared.len() + block(3).len(),
            "{common} bytes in common"
        );
        // 40 tokens hold one whole 32-token block: only id 1 is shared.
        assert!(c.starts_with(&block(1)) && !c.starts_with(&shared), "{c}");
        for (prompt, tokens) in [(&a, 200), (&b, 150), (&c, 40)] {
            assert_eq!(builder.tokenizer().count(prompt).unwrap(), tokens);
        }
        assert_eq!(&*replay.offsets, &[0.0, 0.01, 0.02]);
    }

    #[test]
    fn speedup_and_start_offset_shift_the_schedule() {
        let trace = "{\"timestamp\": 1000, \"input_length\": 8}\n{\"timestamp\": 3000, \"input_length\": 8}\n{\"timestamp\": 9000, \"input_length\": 8}\n";
        let w = workload(trace, "speedup = 2\nstart_seconds = 1").unwrap();
        // Recorded 0, 2 and 8 s; from 1 s in, at twice the speed: 0.5 and 3.5 s.
        assert_eq!(&*w.offsets().unwrap(), &[0.5, 3.5]);
        let error = workload(trace, "start_seconds = 9")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("skips the whole trace, which spans 8 s"),
            "{error}"
        );
    }
}
