//! Request data for llm-bench: prompts of an exact token count, built with a local Hugging Face
//! tokenizer, prompts read from dataset files, and timestamped request traces for replay.
//!
//! Nothing here runs on an async runtime: engines prepare prompts before a benchmark starts or
//! on a blocking pool ahead of the schedule.

mod conversation;
mod corpus;
mod files;
mod prompt;
mod tokenizer;
mod trace;

use std::path::PathBuf;

pub use files::{Dataset, Row, Skipped, OUTPUT_COLUMNS, PROMPT_COLUMNS};
pub use prompt::PromptBuilder;
pub use tokenizer::TokenizerFile;
pub use trace::{Trace, TracePrompt, TraceRow, TRACE_COLUMNS};

/// What went wrong with a tokenizer or a data file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The tokenizer could not be loaded or used.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No prompt of exactly the requested length could be built.
    #[error("cannot build a prompt of exactly {tokens} tokens with tokenizer {}: {message}", path.display())]
    ExactLength {
        /// The requested length.
        tokens: u32,
        /// The tokenizer's file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A data file could not be read or holds no usable prompt.
    #[error("data file {}: {message}", path.display())]
    File {
        /// The data file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}
