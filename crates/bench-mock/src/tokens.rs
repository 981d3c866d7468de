//! Counting prompt tokens: with the client's own tokenizer file when one is configured, else
//! by a documented approximation.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::openai::Prompt;
use crate::MockError;

/// Bytes of text per approximated token (the usual rule of thumb for English BPE vocabularies).
const BYTES_PER_TOKEN: usize = 4;

#[derive(Debug)]
pub(crate) enum Counter {
    Tokenizer(Box<Tokenizer>),
    Approximate,
}

impl Counter {
    /// Loads `tokenizer.json`, or the one inside a directory.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, MockError> {
        let Some(path) = path else {
            return Ok(Counter::Approximate);
        };
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let tokenizer = Tokenizer::from_file(&file).map_err(|e| MockError::Config {
            key: "tokenizer".to_owned(),
            message: format!("cannot load {}: {e}; give a Hugging Face tokenizer.json or a directory holding one", file.display()),
        })?;
        Ok(Counter::Tokenizer(Box::new(tokenizer)))
    }

    /// Prompt tokens as a completions server counts them: the tokenizer's special tokens (a
    /// BOS, for instance) included, no chat template.
    pub(crate) fn count(&self, prompt: &Prompt) -> u32 {
        match (self, prompt) {
            (_, Prompt::TokenIds(n)) => *n,
            (Counter::Tokenizer(t), Prompt::Text(text)) => t
                .encode_fast(text.as_str(), true)
                .map(|e| e.len() as u32)
                .unwrap_or_else(|_| approximate(text)),
            (Counter::Approximate, Prompt::Text(text)) => approximate(text),
        }
    }
}

fn approximate(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX)
}
