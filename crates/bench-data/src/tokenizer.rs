//! A local Hugging Face tokenizer, counting tokens the way a server counts a prompt.

use std::path::{Path, PathBuf};

use crate::DataError;

/// A `tokenizer.json` loaded from a file or from a model directory holding one.
#[derive(Debug)]
pub struct TokenizerFile {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl TokenizerFile {
    /// Loads `path`: a `tokenizer.json` file, or a directory that holds one.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        if !file.is_file() {
            let what = if path.is_dir() {
                format!("directory {} holds no tokenizer.json", path.display())
            } else {
                format!("{} does not exist", path.display())
            };
            return Err(DataError::Tokenizer {
                path: file,
                message: format!("{what}; give a Hugging Face tokenizer.json or the model directory holding it (there is no model hub download)"),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(&file).map_err(|e| DataError::Tokenizer {
            path: file.clone(),
            message: format!("is not a Hugging Face tokenizer.json: {e}"),
        })?;
        Ok(Self { inner, path: file })
    }

    /// The `tokenizer.json` file that was loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens in `text` as a server counts a completion prompt: the tokenizer's own special
    /// tokens (a BOS, for instance) included, no chat template.
    pub fn count(&self, text: &str) -> Result<u32, DataError> {
        self.encode(text, true).map(|ids| ids.len() as u32)
    }

    pub(crate) fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, DataError> {
        self.inner
            .encode_fast(text, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| DataError::Tokenizer {
                path: self.path.clone(),
                message: format!("cannot encode text: {e}"),
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The committed test tokenizer (`data/tokenizer/` at the workspace root).
    pub(crate) fn test_tokenizer_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tokenizer")
    }

    pub(crate) fn test_tokenizer() -> TokenizerFile {
        TokenizerFile::load(&test_tokenizer_dir()).unwrap()
    }

    /// The generator of the committed test tokenizer: a byte-level BPE trained on the crate's
    /// own corpus, so any text round-trips. `cargo xtask codegen` (or `UPDATE_TOKENIZER=1`)
    /// rewrites the files; otherwise this test fails when they are stale.
    #[test]
    fn committed_test_tokenizer_is_fresh() {
        use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
        use tokenizers::normalizers::NormalizerWrapper;
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::{AddedToken, TokenizerBuilder};

        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(2048)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tokenizer =
            TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
                .with_model(BPE::default())
                .with_normalizer(None)
                .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
                .with_post_processor(Some(ByteLevel::new(false, true, true)))
                .with_decoder(Some(ByteLevel::new(false, true, true)))
                .build()
                .unwrap();
        let corpus = crate::corpus::TEXT.lines().filter(|l| !l.is_empty());
        tokenizer.train(&mut trainer, corpus).unwrap();
        let json = tokenizer.to_string(true).unwrap() + "\n";
        let files = [
            ("tokenizer.json", json),
            (
                "tokenizer_config.json",
                serde_json::to_string_pretty(&serde_json::json!({
                    "tokenizer_class": "PreTrainedTokenizerFast",
                    "model_max_length": 32768,
                    "bos_token": "<|endoftext|>",
                    "eos_token": "<|endoftext|>",
                    "unk_token": "<|endoftext|>",
                    "add_prefix_space": false,
                }))
                .unwrap()
                    + "\n",
            ),
            (
                "special_tokens_map.json",
                serde_json::to_string_pretty(&serde_json::json!({
                    "bos_token": "<|endoftext|>",
                    "eos_token": "<|endoftext|>",
                    "unk_token": "<|endoftext|>",
                }))
                .unwrap()
                    + "\n",
            ),
        ];
        let dir = test_tokenizer_dir();
        let update = std::env::var_os("UPDATE_TOKENIZER").is_some();
        for (name, text) in files {
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else {
                let committed = std::fs::read_to_string(&path).unwrap_or_default();
                assert!(
                    committed == text,
                    "{} is stale; run `cargo xtask codegen` and commit the result",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn loads_from_a_file_or_a_directory_and_says_what_is_missing() {
        let dir = test_tokenizer_dir();
        let from_dir = TokenizerFile::load(&dir).unwrap();
        let from_file = TokenizerFile::load(&dir.join("tokenizer.json")).unwrap();
        assert_eq!(
            from_dir.count("hello world").unwrap(),
            from_file.count("hello world").unwrap()
        );

        let empty = tempfile::tempdir().unwrap();
        let error = TokenizerFile::load(empty.path()).unwrap_err().to_string();
        assert!(error.contains("holds no tokenizer.json"), "{error}");
        let error = TokenizerFile::load(&empty.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
        let bad = empty.path().join("tokenizer.json");
        std::fs::write(&bad, "{}").unwrap();
        let error = TokenizerFile::load(&bad).unwrap_err().to_string();
        assert!(
            error.contains("is not a Hugging Face tokenizer.json"),
            "{error}"
        );
    }
}
