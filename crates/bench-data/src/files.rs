//! Prompts read from dataset files: `.jsonl`, `.json`, `.csv` and `.parquet`.
//!
//! Each row is an object (a JSON object, a CSV record under its header, a Parquet row).
//! Unless the user
//! names the column, each row finds its own prompt, so a file may mix kinds of rows: a
//! ShareGPT-style row (`conversations` or `messages`, a list of turns) gives its first human
//! turn, as `vllm bench serve` does, and any other row the first of [`PROMPT_COLUMNS`] it has.
//! An optional output length comes from [`OUTPUT_COLUMNS`].
//!
//! A row that cannot be used (bad JSON, no prompt, an empty prompt) is skipped and counted
//! with its line and reason, so one odd row does not stop a run; a file with no usable row at
//! all is an error.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::DataError;

mod parquet_rows;

/// Columns that hold the prompt, in the order they are looked for.
pub const PROMPT_COLUMNS: [&str; 6] = [
    "prompt",
    "text",
    "question",
    "instruction",
    "input",
    "content",
];

/// Columns that hold a row's output length in tokens.
pub const OUTPUT_COLUMNS: [&str; 4] = [
    "output_tokens",
    "max_tokens",
    "output_len",
    "completion_tokens",
];

/// Rows by 1-based line or element: an object, or why it is not one.
pub(crate) type Records = Vec<(usize, Result<Map<String, Value>, String>)>;

/// A file given as `data.path`, about to be read: its extension, and errors naming it.
pub(crate) struct DataFile<'a> {
    path: &'a Path,
    /// The extension in lower case (empty without one).
    pub(crate) extension: String,
}

impl<'a> DataFile<'a> {
    /// `path`, which must exist.
    pub(crate) fn open(path: &'a Path) -> Result<Self, DataError> {
        let file = Self {
            path,
            extension: path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .unwrap_or_default(),
        };
        if !path.exists() {
            return Err(file.error("does not exist; check data.path".to_owned()));
        }
        Ok(file)
    }

    /// An error about this file.
    pub(crate) fn error(&self, message: String) -> DataError {
        DataError::File {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// The whole file as text.
    pub(crate) fn text(&self) -> Result<String, DataError> {
        std::fs::read_to_string(self.path).map_err(|e| self.error(format!("cannot be read: {e}")))
    }
}

/// Keys of a conversation (ShareGPT and chat-style rows).
const CONVERSATION_KEYS: [&str; 2] = ["conversations", "messages"];

/// The usable rows of a data file and the rows that were skipped.
#[derive(Debug)]
pub struct Dataset {
    /// The file that was read.
    pub path: PathBuf,
    /// Where prompts came from: column names and `conversations` / `messages`, in the order
    /// rows first used them, joined by `, ` (e.g. `prompt, messages`).
    pub source: String,
    /// Rows in file order.
    pub rows: Vec<Row>,
    /// Rows that were skipped, in file order.
    pub skipped: Vec<Skipped>,
}

/// One request's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The prompt text.
    pub prompt: String,
    /// The row's output length, when it gives one.
    pub output_tokens: Option<u32>,
    /// A conversation row's human turns after the first (`prompt`), in order: the later user
    /// messages of a multi-turn session; empty for other rows.
    pub later_turns: Vec<String>,
}

/// A row that was not used.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// 1-based line (`.jsonl`, `.csv`), element (`.json`) or row (`.parquet`).
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

impl Dataset {
    /// Reads `path`, choosing the format by its extension.
    pub fn load(path: &Path, prompt_column: Option<&str>) -> Result<Self, DataError> {
        let file = DataFile::open(path)?;
        let error = |message: String| file.error(message);
        let records: Records = match file.extension.as_str() {
            "jsonl" | "ndjson" => jsonl(&file.text()?),
            "json" => json(&file.text()?).map_err(error)?,
            "csv" => csv_rows(&file.text()?).map_err(error)?,
            "parquet" => {
                let prompt = |column: &str| match prompt_column {
                    Some(named) => named == column,
                    None => PROMPT_COLUMNS.contains(&column) || CONVERSATION_KEYS.contains(&column),
                };
                let none = match prompt_column {
                    Some(named) => format!("has no column `{named}` (data.prompt_column)"),
                    None => format!(
                        "has none of the prompt columns {} nor a conversation; name the column with data.prompt_column",
                        PROMPT_COLUMNS.join(", ")
                    ),
                };
                let length = |column: &str| OUTPUT_COLUMNS.contains(&column);
                parquet_rows::rows(path, prompt, length, &none).map_err(error)?
            }
            other => {
                return Err(error(format!(
                    "has the extension `{other}`; data files are .jsonl, .json, .csv or .parquet"
                )))
            }
        };
        let mut dataset = Dataset {
            path: path.to_path_buf(),
            source: String::new(),
            rows: Vec::new(),
            skipped: Vec::new(),
        };
        let named = prompt_column.map(|c| Source::Column(c.to_owned()));
        let mut sources: Vec<String> = Vec::new();
        for (line, record) in records {
            let object = match record {
                Ok(object) => object,
                Err(reason) => {
                    dataset.skipped.push(Skipped { line, reason });
                    continue;
                }
            };
            // Each row its own column: a file may mix `prompt`, `text` and `messages` rows.
            let found = named.clone().or_else(|| Source::detect(&object));
            let Some(found) = found else {
                dataset.skipped.push(Skipped {
                    line,
                    reason: format!(
                        "no prompt: none of the columns {} nor a conversation; name the column with data.prompt_column",
                        PROMPT_COLUMNS.join(", ")
                    ),
                });
                continue;
            };
            match found.row(&object) {
                Ok(row) => {
                    dataset.rows.push(row);
                    let name = found.name();
                    if !sources.contains(&name) {
                        sources.push(name);
                    }
                }
                Err(reason) => dataset.skipped.push(Skipped { line, reason }),
            }
        }
        dataset.source = match (&named, sources.is_empty()) {
            (Some(column), true) => column.name(),
            _ => sources.join(", "),
        };
        if dataset.rows.is_empty() {
            let why = match dataset.skipped.first() {
                Some(first) => format!(
                    "has no usable row ({} skipped; line {}: {})",
                    dataset.skipped.len(),
                    first.line,
                    first.reason
                ),
                None => "is empty; give a file with at least one prompt".to_owned(),
            };
            return Err(error(why));
        }
        Ok(dataset)
    }
}

/// Where a file's prompts are.
#[derive(Debug, Clone)]
enum Source {
    Column(String),
    Conversation(&'static str),
}

impl Source {
    fn detect(object: &Map<String, Value>) -> Option<Self> {
        if let Some(key) = CONVERSATION_KEYS
            .iter()
            .find(|k| object.get(**k).is_some_and(Value::is_array))
        {
            return Some(Source::Conversation(key));
        }
        PROMPT_COLUMNS
            .iter()
            .find(|c| object.contains_key(**c))
            .map(|c| Source::Column((*c).to_owned()))
    }

    fn name(&self) -> String {
        match self {
            Source::Column(c) => c.clone(),
            Source::Conversation(key) => (*key).to_owned(),
        }
    }

    fn row(&self, object: &Map<String, Value>) -> Result<Row, String> {
        let later_turns = match self {
            Source::Column(_) => Vec::new(),
            Source::Conversation(key) => crate::conversation::later_human_turns(object.get(*key)),
        };
        let prompt = match self {
            Source::Column(column) => match object.get(column) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => return Err(format!("no `{column}` value")),
                Some(other) => return Err(format!("`{column}` is not text: {other}")),
            },
            Source::Conversation(key) => first_human_turn(object.get(*key))
                .ok_or_else(|| format!("`{key}` has no human or user turn with text"))?,
        };
        if prompt.trim().is_empty() {
            return Err("the prompt is empty".to_owned());
        }
        let mut output_tokens = None;
        // An empty cell or a null is a row without a length.
        let given = |v: &&Value| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty());
        if let Some((column, value)) = OUTPUT_COLUMNS
            .iter()
            .find_map(|c| object.get(*c).filter(given).map(|v| (c, v)))
        {
            output_tokens = Some(output_length(value).ok_or_else(|| {
                format!("`{column}` = {value} is not a whole number of tokens of at least 1")
            })?);
        }
        Ok(Row {
            prompt,
            output_tokens,
            later_turns,
        })
    }
}

/// The text of the first turn from a human (`from: human` in ShareGPT, `role: user` in chat).
fn first_human_turn(turns: Option<&Value>) -> Option<String> {
    turns?.as_array()?.iter().find_map(|turn| {
        let speaker = turn.get("from").or_else(|| turn.get("role"))?.as_str()?;
        if !matches!(speaker, "human" | "user") {
            return None;
        }
        let text = turn
            .get("value")
            .or_else(|| turn.get("content"))?
            .as_str()?;
        Some(text.to_owned())
    })
}

fn output_length(value: &Value) -> Option<u32> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u32::try_from(n).ok().filter(|&n| n >= 1)
}

pub(crate) fn jsonl(text: &str) -> Records {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let record = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(object)) => Ok(object),
                Ok(other) => Err(format!("not a JSON object: {}", kind(&other))),
                Err(e) => Err(format!("not valid JSON: {e}")),
            };
            (i + 1, record)
        })
        .collect()
}

fn json(text: &str) -> Result<Records, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!("is not valid JSON ({e}); a .json data file holds an array of objects (use .jsonl for one object per line)")
    })?;
    // An array of rows, or an object holding one under `data`.
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("data") {
            Some(Value::Array(items)) => items,
            _ => return Err("holds an object without a `data` array; a .json data file holds an array of objects".to_owned()),
        },
        other => {
            return Err(format!(
                "holds {}; a .json data file holds an array of objects",
                kind(&other)
            ))
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let record = match item {
                Value::Object(object) => Ok(object),
                other => Err(format!("element is not an object: {}", kind(&other))),
            };
            (i + 1, record)
        })
        .collect())
}

pub(crate) fn csv_rows(text: &str) -> Result<Records, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("has no readable CSV header row: {e}"))?
        .clone();
    Ok(reader
        .records()
        .map(|record| match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                let object = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                    .collect();
                (line, Ok(object))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                (line, Err(format!("not a valid CSV record: {e}")))
            }
        })
        .collect())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn prompts(d: &Dataset) -> Vec<&str> {
        d.rows.iter().map(|r| r.prompt.as_str()).collect()
    }

    #[test]
    fn jsonl_detects_the_prompt_column_and_skips_odd_lines_with_their_reason() {
        let (_dir, path) = write(
            "p.jsonl",
            "{\"question\": \"why is the sky blue?\", \"max_tokens\": 40}\n\n{\"question\": \"\"}\nnot json\n[1]\n{\"question\": \"how far is the moon?\"}\n{\"question\": \"x\", \"max_tokens\": -3}\n",
        );
        let d = Dataset::load(&path, None).unwrap();
        assert_eq!(d.source, "question");
        assert_eq!(
            prompts(&d),
            ["why is the sky blue?", "how far is the moon?"]
        );
        assert_eq!(d.rows[0].output_tokens, Some(40));
        assert_eq!(d.rows[1].output_tokens, None);
        let lines: Vec<usize> = d.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 4, 5, 7]);
        assert!(d.skipped[0].reason.contains("empty"));
        assert!(d.skipped[1].reason.contains("not valid JSON"));
        assert!(d.skipped[2].reason.contains("not a JSON object"));
        assert!(d.skipped[3].reason.contains("`max_tokens` = -3"));
    }

    #[test]
    fn json_arrays_and_sharegpt_conversations_give_the_first_human_turn() {
        let (_dir, path) = write(
            "share.json",
            r#"[
              {"id": "a", "conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "name a river"}, {"from": "gpt", "value": "the Rhine"}]},
              {"id": "b", "conversations": [{"from": "gpt", "value": "hello"}]},
              {"id": "c", "messages": [{"role": "user", "content": "name a mountain"}]}
            ]"#,
        );
        let d = Dataset::load(&path, None).unwrap();
        assert_eq!(d.source, "conversations, messages");
        assert_eq!(prompts(&d), ["name a river", "name a mountain"]);
        assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
        assert!(d.skipped[0].reason.contains("no human or user turn"));
    }

    /// Each row finds its own prompt, in the detection order; only rows with none are skipped.
    #[test]
    fn a_jsonl_file_may_mix_prompt_text_and_messages_rows() {
        let (_dir, path) = write(
            "mixed.jsonl",
            "{\"prompt\": \"first, a prompt\"}\n\
             {\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"second, a chat\"}]}\n\
             {\"text\": \"third, a text\", \"max_tokens\": 7}\n\
             {\"id\": 4}\n\
             {\"text\": \"ignored\", \"prompt\": \"fifth, the prompt wins\"}\n\
             {\"messages\": [{\"role\": \"assistant\", \"content\": \"no user\"}], \"prompt\": \"unused\"}\n",
        );
        let d = Dataset::load(&path, None).unwrap();
        assert_eq!(
            prompts(&d),
            [
                "first, a prompt",
                "second, a chat",
                "third, a text",
                "fifth, the prompt wins"
            ]
        );
        assert_eq!(d.rows[2].output_tokens, Some(7));
        assert_eq!(d.source, "prompt, messages, text");
        let skipped: Vec<(usize, &str)> = d
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(skipped[0].0, 4);
        assert!(
            skipped[0].1.starts_with("no prompt: none of the columns"),
            "{skipped:?}"
        );
        // A conversation is looked for first, as before.
        assert_eq!(
            skipped[1],
            (6, "`messages` has no human or user turn with text")
        );

        // A named column is read from every row; rows without it are skipped.
        let d = Dataset::load(&path, Some("text")).unwrap();
        assert_eq!(prompts(&d), ["third, a text", "ignored"]);
        assert_eq!(d.source, "text");
        assert_eq!(d.skipped.len(), 4);
    }

    #[test]
    fn csv_reads_a_named_column_and_an_output_length() {
        let (_dir, path) = write(
            "p.csv",
            "id,body,output_len\n1,\"first, with a comma\",12\n2,second,\n3,third\n",
        );
        let error = Dataset::load(&path, None).unwrap_err().to_string();
        assert!(error.contains("has no usable row"), "{error}");
        assert!(error.contains("data.prompt_column"), "{error}");
        let d = Dataset::load(&path, Some("body")).unwrap();
        assert_eq!(prompts(&d), ["first, with a comma", "second"]);
        assert_eq!(d.rows[0].output_tokens, Some(12));
        assert_eq!(
            d.rows[1].output_tokens, None,
            "an empty cell gives no length"
        );
        // A short record is not a record.
        assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
        assert_eq!(d.skipped[0].line, 4);
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/parquet")
            .join(name)
    }

    /// Files written by pyarrow (`fixtures/parquet/make_fixtures.py`): snappy (its default)
    /// and zstd give the rows, sources and skipped rows of the same rows as JSON lines.
    #[test]
    fn parquet_rows_are_read_as_the_same_rows_in_jsonl() {
        let jsonl = Dataset::load(&fixture("rows.jsonl"), None).unwrap();
        assert_eq!(
            prompts(&jsonl),
            [
                "why is the sky blue?",
                "name a river",
                "how far is the moon?"
            ]
        );
        assert_eq!(jsonl.rows[0].output_tokens, Some(40));
        let skipped: Vec<usize> = jsonl.skipped.iter().map(|s| s.line).collect();
        assert_eq!(skipped, [2, 5, 6]);
        for name in ["rows.parquet", "rows-zstd.parquet"] {
            let parquet = Dataset::load(&fixture(name), None).unwrap();
            assert_eq!(parquet.rows, jsonl.rows, "{name}");
            assert_eq!(parquet.skipped, jsonl.skipped, "{name}");
            assert_eq!(parquet.source, jsonl.source, "{name}");
        }
        // A named column, read from every row: the same too.
        let named = |name: &str| Dataset::load(&fixture(name), Some("answer")).unwrap().rows;
        assert_eq!(named("rows.parquet"), named("rows.jsonl"));
        assert_eq!(
            named("rows.parquet").len(),
            5,
            "all but the row of length 0"
        );
    }

    #[test]
    fn unreadable_parquet_files_are_errors_that_say_why() {
        let error = |path: &Path, column: Option<&str>| {
            Dataset::load(path, column).unwrap_err().to_string()
        };
        let gzip = error(&fixture("rows-gzip.parquet"), None);
        assert!(
            gzip.contains("column `prompt` compressed with GZIP")
                && gzip.contains("snappy or zstd"),
            "{gzip}"
        );
        let missing = error(&fixture("rows.parquet"), Some("body"));
        assert!(
            missing.contains("has no column `body` (data.prompt_column) (its columns: id, prompt, max_tokens, conversations, answer)"),
            "{missing}"
        );
        let (_dir, text) = write("text.parquet", "hello");
        let not_parquet = error(&text, None);
        assert!(
            not_parquet.contains("is not a readable Parquet file"),
            "{not_parquet}"
        );
    }

    #[test]
    fn unusable_files_are_errors_that_name_the_file_and_the_fix() {
        for (name, text, expected) in [
            ("e.jsonl", "", "is empty"),
            (
                "p.txt",
                "hello",
                "data files are .jsonl, .json, .csv or .parquet",
            ),
            ("o.json", "{\"rows\": []}", "without a `data` array"),
            ("b.json", "[1,", "is not valid JSON"),
        ] {
            let (_dir, path) = write(name, text);
            let error = Dataset::load(&path, None).unwrap_err().to_string();
            assert!(error.contains(name) && error.contains(expected), "{error}");
        }
        let error = Dataset::load(Path::new("/nonexistent/x.jsonl"), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
    }
}
