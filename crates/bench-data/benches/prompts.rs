//! `cargo xtask bench data`: how fast token-exact prompts are built.
//!
//! For each length, on one thread: prompts per second with the default verification schedule
//! (a full re-encode of the first prompts and one in 32 after them) and with every prompt
//! re-encoded. The tokenizer is the committed test tokenizer (a byte-level BPE), or the one
//! given as an argument (a `tokenizer.json` or a model directory).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bench_data::{PromptBuilder, TokenizerFile};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let quick = std::env::args().any(|a| a == "--quick");
    let path = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/tokenizer"));
    let budget = Duration::from_secs_f64(if quick { 0.5 } else { 2.0 });
    println!(
        "token-exact prompts on one thread, tokenizer {}",
        path.display()
    );
    println!(
        "{:>8} {:>22} {:>22} {:>10}",
        "tokens", "scheduled: prompts/s", "verify all: prompts/s", "corrected"
    );
    for tokens in [128u32, 512, 2048, 8192] {
        let mut row = Vec::new();
        let mut corrected = 0;
        for verify_all in [false, true] {
            let tokenizer = TokenizerFile::load(&path).expect("tokenizer");
            let builder = PromptBuilder::new(tokenizer, 0).expect("builder");
            if verify_all {
                builder.verify_every_prompt();
            }
            let started = Instant::now();
            let mut made = 0u64;
            while started.elapsed() < budget {
                let prompt = builder
                    .build(&format!("req-{made}"), tokens, made)
                    .expect("prompt");
                std::hint::black_box(prompt);
                made += 1;
            }
            row.push(made as f64 / started.elapsed().as_secs_f64());
            corrected += builder.corrected();
        }
        println!(
            "{tokens:>8} {:>22.0} {:>22.0} {corrected:>10}",
            row[0], row[1]
        );
    }
}
