//! Prompts of an exact token count.
//!
//! A prompt is an optional shared prefix, a unique lead (so a server's prefix cache cannot
//! turn repeated prompts into instant first tokens), then words of the corpus from a
//! per-request starting point. Each corpus word's token count (with its leading space) is
//! known in advance, so words are appended until the next one would overshoot and the gap is
//! closed with one-token words.
//!
//! That sum is exact when the tokenizer splits text into pieces at spaces before it applies
//! its model (byte-level BPE, Metaspace and whitespace pre-tokenizers do). A full re-encode
//! costs about 1 µs per token here, five times the 2,000 prompts/s target for 2,048-token
//! prompts, so prompts are re-encoded on a schedule: the first [`ALWAYS_VERIFIED`] of a
//! builder, then one in [`VERIFY_EVERY`]. A verified prompt whose count is off is corrected
//! until exact (an error when that does not converge), and from then on every prompt of that
//! builder is verified and corrected.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::corpus;
use crate::tokenizer::TokenizerFile;
use crate::DataError;

/// Correction rounds before giving up on an exact length.
const MAX_ROUNDS: usize = 16;
/// Prompts of a builder that are always re-encoded before the schedule thins out.
const ALWAYS_VERIFIED: u64 = 32;
/// One prompt in this many is re-encoded after the first [`ALWAYS_VERIFIED`].
const VERIFY_EVERY: u64 = 32;

/// Builds prompts of exactly the requested number of tokens, as the tokenizer counts them
/// with its special tokens (see [`TokenizerFile::count`]).
#[derive(Debug)]
pub struct PromptBuilder {
    tokenizer: TokenizerFile,
    /// The corpus as words, each with the tokens of `" word"`.
    words: Vec<Word>,
    /// Indices into `words` of words that are exactly one token.
    fillers: Vec<usize>,
    /// Tokens the tokenizer adds to any text (a BOS, for instance).
    special: u32,
    /// The shared prefix and its length in tokens, special tokens included.
    prefix: Option<(String, u32)>,
    /// Prompts built so far, for the verification schedule.
    built: AtomicU64,
    /// Set once a verified prompt's count was off: verify every prompt from then on.
    verify_all: AtomicBool,
    /// Verified prompts whose additive count was off and had to be corrected.
    corrected: AtomicU64,
}

#[derive(Debug)]
struct Word {
    text: String,
    tokens: u32,
}

impl PromptBuilder {
    /// A builder over the project's corpus; `prefix_tokens` > 0 starts every prompt with the
    /// same text of that many tokens.
    pub fn new(tokenizer: TokenizerFile, prefix_tokens: u32) -> Result<Self, DataError> {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        let mut words = Vec::new();
        // A word's tokens where it sits in a prompt: after another word. Alone, a
        // SentencePiece tokenizer (LLaMA's) would count the leading space as a token of its own.
        let anchor = tokenizer.encode("a", false)?.len();
        for word in corpus::TEXT.split_whitespace() {
            let tokens = match counts.get(word) {
                Some(&n) => n,
                None => {
                    let after_anchor = tokenizer.encode(&format!("a {word}"), false)?.len();
                    let n = after_anchor.saturating_sub(anchor).max(1) as u32;
                    counts.insert(word, n);
                    n
                }
            };
            words.push(Word {
                text: format!(" {word}"),
                tokens,
            });
        }
        let mut seen = HashSet::new();
        let fillers = (0..words.len())
            .filter(|&i| words[i].tokens == 1 && seen.insert(words[i].text.as_str()))
            .collect();
        let special = tokenizer.encode("", true)?.len() as u32;
        let mut builder = Self {
            tokenizer,
            words,
            fillers,
            special,
            prefix: None,
            built: AtomicU64::new(0),
            verify_all: AtomicBool::new(true),
            corrected: AtomicU64::new(0),
        };
        if prefix_tokens > 0 {
            let mut text = String::new();
            // The prefix starts at the corpus's beginning; requests start elsewhere.
            builder.exact(&mut text, "", prefix_tokens, 0, false)?;
            let text = text.trim_start().to_owned();
            let tokens = builder.tokenizer.count(&text)?;
            if tokens != prefix_tokens {
                return Err(builder.error(
                    prefix_tokens,
                    "the shared prefix changes length when trimmed",
                ));
            }
            builder.prefix = Some((text, prefix_tokens));
        }
        builder.verify_all.store(false, Ordering::Relaxed);
        Ok(builder)
    }

    /// The tokenizer the prompts are counted with.
    pub fn tokenizer(&self) -> &TokenizerFile {
        &self.tokenizer
    }

    /// Tokens of the shared prefix (0 without one).
    pub fn prefix_tokens(&self) -> u32 {
        self.prefix.as_ref().map_or(0, |p| p.1)
    }

    /// A prompt of exactly `tokens` tokens: the shared prefix, `lead`, then corpus words
    /// starting at a point chosen by `variant`. A prompt too short for its lead goes without
    /// it (a handful of tokens gains nothing from a prefix cache); one too short for the
    /// shared prefix is an error naming the shortest length that works.
    pub fn build(&self, lead: &str, tokens: u32, variant: u64) -> Result<String, DataError> {
        let mut text = String::with_capacity(tokens as usize * 6 + 64);
        let (prefix, prefix_tokens) = match &self.prefix {
            Some((prefix, n)) => (prefix.as_str(), *n),
            None => ("", 0),
        };
        if prefix_tokens > tokens {
            return Err(self.error(
                tokens,
                &format!("the shared prefix alone takes {prefix_tokens}; ask for at least that many, or fewer prefix_tokens"),
            ));
        }
        let head = match prefix {
            "" => lead.to_owned(),
            _ => format!("{prefix} {lead}"),
        };
        if self.tokenizer.count(&head)? <= tokens {
            self.exact(&mut text, &head, tokens, variant, false)?;
        } else {
            self.exact(&mut text, prefix, tokens, variant, false)?;
            if prefix.is_empty() {
                // Fillers were appended with their leading space.
                let trimmed = text.trim_start().to_owned();
                if self.tokenizer.count(&trimmed)? == tokens {
                    text = trimmed;
                }
            }
        }
        Ok(text)
    }

    /// A block of text that adds exactly `tokens` tokens when appended to a prompt: corpus
    /// words (each with its leading space) from a point chosen by `variant`, the same text
    /// for the same arguments (always verified, so never one of two corrections). Shared
    /// prompt prefixes are built of these (a trace's `hash_ids`).
    pub fn block(&self, tokens: u32, variant: u64) -> Result<String, DataError> {
        let mut text = String::with_capacity(tokens as usize * 6);
        self.exact(&mut text, "", tokens + self.special, variant, true)?;
        Ok(text)
    }

    /// A prompt of exactly `tokens` tokens that starts with `head` (text the caller built,
    /// such as [`Self::block`]s), then `lead` when it fits, then corpus words from a point
    /// chosen by `variant`. `head` is kept byte for byte; the shared prefix of `new` is not
    /// used.
    pub fn build_after(
        &self,
        head: &str,
        lead: &str,
        tokens: u32,
        variant: u64,
    ) -> Result<String, DataError> {
        let mut text = String::with_capacity(head.len() + tokens as usize * 6);
        let with_lead = format!("{head} {lead}");
        if !lead.is_empty() && self.tokenizer.count(&with_lead)? <= tokens {
            self.exact(&mut text, &with_lead, tokens, variant, false)?;
        } else {
            self.exact(&mut text, head, tokens, variant, false)?;
        }
        Ok(text)
    }

    /// Writes `head` and then words into `text` until it counts exactly `target` tokens.
    fn exact(
        &self,
        text: &mut String,
        head: &str,
        target: u32,
        variant: u64,
        always_verify: bool,
    ) -> Result<(), DataError> {
        text.clear();
        text.push_str(head);
        let head_tokens = self.tokenizer.count(head)?;
        if head_tokens > target {
            return Err(self.error(target, &format!("its beginning alone takes {head_tokens}")));
        }
        // Spread starting points over the corpus; odd multiplier, so neighbours differ.
        let start = (variant.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) as usize % self.words.len();
        let mut appended: Vec<(usize, u32)> = Vec::new(); // (byte length before the word, its tokens)
        let mut have = head_tokens;
        let mut next = start;
        // Corpus words while they fit.
        loop {
            let word = &self.words[next % self.words.len()];
            if have + word.tokens > target {
                break;
            }
            appended.push((text.len(), word.tokens));
            text.push_str(&word.text);
            have += word.tokens;
            next += 1;
        }
        let mut filler = start;
        let built = self.built.fetch_add(1, Ordering::Relaxed);
        let verify = always_verify
            || self.verify_all.load(Ordering::Relaxed)
            || built < ALWAYS_VERIFIED
            || built.is_multiple_of(VERIFY_EVERY);
        for round in 0..MAX_ROUNDS {
            // Close the gap with one-token words, by the additive estimate.
            while have < target {
                let Some(&i) = self.fillers.get(filler % self.fillers.len().max(1)) else {
                    return Err(self.error(
                        target,
                        "the tokenizer has no one-token words in the corpus to fill with",
                    ));
                };
                filler += 1;
                appended.push((text.len(), 1));
                text.push_str(&self.words[i].text);
                have += 1;
            }
            if !verify {
                return Ok(());
            }
            let actual = self.tokenizer.count(text)?;
            if actual == target {
                return Ok(());
            }
            if round == 0 {
                self.corrected.fetch_add(1, Ordering::Relaxed);
                self.verify_all.store(true, Ordering::Relaxed);
            }
            if actual < target {
                // Words merged: fill the difference.
                have = actual;
                continue;
            }
            // Words split into more tokens than alone: drop words until under the target.
            let mut over = actual - target;
            while over > 0 {
                let Some((at, tokens)) = appended.pop() else {
                    return Err(self.error(target, "the lead alone is too long"));
                };
                text.truncate(at);
                over = over.saturating_sub(tokens);
            }
            have = self.tokenizer.count(text)?;
        }
        Err(self.error(
            target,
            &format!("the count did not settle after {MAX_ROUNDS} corrections"),
        ))
    }

    fn error(&self, tokens: u32, message: &str) -> DataError {
        DataError::ExactLength {
            tokens,
            path: self.tokenizer.path().to_path_buf(),
            message: message.to_owned(),
        }
    }

    /// Whether every prompt is re-encoded (after a correction, or by [`Self::verify_every_prompt`]).
    pub fn verifies_every_prompt(&self) -> bool {
        self.verify_all.load(Ordering::Relaxed)
    }

    /// Re-encode every prompt from now on, not one in 32.
    pub fn verify_every_prompt(&self) {
        self.verify_all.store(true, Ordering::Relaxed);
    }

    /// Verified prompts whose count by word had to be corrected.
    pub fn corrected(&self) -> u64 {
        self.corrected.load(Ordering::Relaxed)
    }

    /// Tokens every text costs before its first character (the tokenizer's special tokens).
    pub fn special_tokens(&self) -> u32 {
        self.special
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::test_tokenizer;

    #[test]
    fn every_prompt_re_encodes_to_exactly_the_requested_count() {
        let builder = PromptBuilder::new(test_tokenizer(), 0).unwrap();
        for (n, tokens) in [8, 9, 16, 33, 100, 255, 256, 1000, 2048, 4096]
            .into_iter()
            .enumerate()
        {
            for variant in 0..20u64 {
                let lead = format!("req-{}", n as u64 * 100 + variant);
                let prompt = builder.build(&lead, tokens, variant).unwrap();
                assert!(prompt.starts_with(&lead));
                assert_eq!(
                    builder.tokenizer().count(&prompt).unwrap(),
                    tokens,
                    "{prompt:?}"
                );
            }
        }
    }

    #[test]
    fn prompts_after_shared_blocks_keep_them_byte_for_byte_and_count_exactly() {
        let builder = PromptBuilder::new(test_tokenizer(), 0).unwrap();
        let special = builder.special_tokens();
        let block = |id| builder.block(64, id).unwrap();
        assert_eq!(block(1), block(1), "the same id gives the same text");
        assert_ne!(block(1), block(2));
        let head = block(1) + &block(2);
        assert_eq!(builder.tokenizer().count(&head).unwrap(), 128 + special);
        for (lead, tokens) in [
            ("req-1", 200),
            ("req-2", 129 + special),
            ("req-3", 128 + special),
        ] {
            let prompt = builder.build_after(&head, lead, tokens, 7).unwrap();
            assert!(prompt.starts_with(&head), "{prompt:?}");
            assert_eq!(builder.tokenizer().count(&prompt).unwrap(), tokens);
        }
    }

    #[test]
    fn prompts_differ_beyond_their_lead_and_share_the_prefix() {
        let builder = PromptBuilder::new(test_tokenizer(), 64).unwrap();
        assert_eq!(builder.prefix_tokens(), 64);
        let (prefix, _) = builder.prefix.clone().unwrap();
        let a = builder.build("req-1", 200, 1).unwrap();
        let b = builder.build("req-2", 200, 2).unwrap();
        for p in [&a, &b] {
            assert!(p.starts_with(&format!("{prefix} req-")), "{p}");
            assert_eq!(builder.tokenizer().count(p).unwrap(), 200);
        }
        let tail = |p: &str| p[prefix.len() + 6..].to_owned();
        assert_ne!(tail(&a), tail(&b));
    }

    /// A BPE with no pre-tokenizer merges across spaces, so counts by word are often off:
    /// the builder notices on a verified prompt, corrects it, and verifies every prompt after.
    #[test]
    fn a_tokenizer_that_merges_across_words_gets_every_prompt_corrected() {
        use tokenizers::decoders::DecoderWrapper;
        use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
        use tokenizers::normalizers::NormalizerWrapper;
        use tokenizers::pre_tokenizers::PreTokenizerWrapper;
        use tokenizers::processors::PostProcessorWrapper;
        use tokenizers::TokenizerBuilder;

        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(600)
            .show_progress(false)
            .build();
        let mut tokenizer = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        >::new()
        .with_model(BPE::default())
        .build()
        .unwrap();
        tokenizer
            .train(&mut trainer, corpus::TEXT.lines().filter(|l| !l.is_empty()))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokenizer.json");
        tokenizer.save(&file, false).unwrap();
        let builder = PromptBuilder::new(TokenizerFile::load(&file).unwrap(), 0).unwrap();
        for variant in 0..40u64 {
            let lead = format!("req-{variant}");
            let prompt = builder.build(&lead, 300, variant).unwrap();
            assert_eq!(builder.tokenizer().count(&prompt).unwrap(), 300);
        }
        assert!(builder.corrected() > 0);
        assert!(builder.verifies_every_prompt());
    }

    #[test]
    fn a_prompt_shorter_than_its_lead_goes_without_it_and_one_shorter_than_the_prefix_fails() {
        let builder = PromptBuilder::new(test_tokenizer(), 0).unwrap();
        let lead_tokens = builder.tokenizer().count("req-123456").unwrap();
        assert!(lead_tokens > 2);
        for tokens in 1..=lead_tokens {
            let prompt = builder.build("req-123456", tokens, 7).unwrap();
            assert_eq!(
                builder.tokenizer().count(&prompt).unwrap(),
                tokens,
                "{prompt:?}"
            );
        }
        let prefixed = PromptBuilder::new(test_tokenizer(), 20).unwrap();
        let error = prefixed.build("req-1", 10, 0).unwrap_err().to_string();
        assert!(
            error.contains("the shared prefix alone takes 20"),
            "{error}"
        );
    }
}
