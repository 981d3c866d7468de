//! Timestamped request traces, for replay: each row is one request and when it arrived.
//!
//! Two shapes, one reader, chosen by the extension:
//! - `.jsonl` (or `.ndjson`): one JSON object per line, such as Mooncake's
//!   `{"timestamp": ms, "input_length": n, "output_length": m, "hash_ids": [ids]}`;
//! - `.csv`: a header row with the same column names; `hash_ids` is a list of whole numbers
//!   separated by spaces (or `;`), or empty.
//!
//! Every row needs `timestamp` (milliseconds from any origin) and either `input_length` (the
//! prompt's tokens, built by the engine) or `prompt` (its text, sent as it is);
//! `output_length` and `hash_ids` are optional. Rows are returned in timestamp order (a stable
//! sort, so equal times keep file order). A row that cannot be used is skipped with its line
//! and reason, as in [`crate::Dataset`]; a file with no usable row is an error.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::files::{csv_rows, jsonl, DataFile, Records};
use crate::{DataError, Skipped};

/// The columns of a trace row.
pub const TRACE_COLUMNS: [&str; 5] = [
    "timestamp",
    "input_length",
    "prompt",
    "output_length",
    "hash_ids",
];

/// The usable rows of a trace file, in timestamp order, and the rows that were skipped.
#[derive(Debug)]
pub struct Trace {
    /// The file that was read.
    pub path: PathBuf,
    /// Rows by timestamp.
    pub rows: Vec<TraceRow>,
    /// Rows that were skipped, in file order.
    pub skipped: Vec<Skipped>,
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// When it arrived, in milliseconds from the trace's own origin.
    pub timestamp_ms: f64,
    /// Its prompt.
    pub prompt: TracePrompt,
    /// Its output length in tokens, when recorded.
    pub output_tokens: Option<u32>,
    /// Ids of the prompt's leading blocks: equal leading ids, equal prefix.
    pub hash_ids: Vec<u64>,
}

/// A trace row's prompt: a length to build, or the text itself.
#[derive(Debug, Clone, PartialEq)]
pub enum TracePrompt {
    /// Build a prompt of this many tokens.
    Tokens(u32),
    /// Send this text.
    Text(String),
}

impl Trace {
    /// Reads `path`, choosing the shape by its extension.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let file = DataFile::open(path)?;
        let error = |message: String| file.error(message);
        let text = file.text()?;
        let records: Records = match file.extension.as_str() {
            "jsonl" | "ndjson" => jsonl(&text),
            "csv" => csv_rows(&text).map_err(error)?,
            other => {
                return Err(error(format!(
                    "has the extension `{other}`; trace files are .jsonl (Mooncake's shape) or .csv"
                )))
            }
        };
        let mut trace = Trace {
            path: path.to_path_buf(),
            rows: Vec::new(),
            skipped: Vec::new(),
        };
        for (line, record) in records {
            match record.and_then(|object| row(&object)) {
                Ok(row) => trace.rows.push(row),
                Err(reason) => trace.skipped.push(Skipped { line, reason }),
            }
        }
        if trace.rows.is_empty() {
            let why = trace.skipped.first().map_or_else(
                || "is empty".to_owned(),
                |s| format!("has no usable row (line {}: {})", s.line, s.reason),
            );
            return Err(error(format!(
                "{why}; a trace row needs `timestamp` (ms) and `input_length` or `prompt`"
            )));
        }
        trace
            .rows
            .sort_by(|a, b| a.timestamp_ms.total_cmp(&b.timestamp_ms));
        Ok(trace)
    }
}

fn row(object: &Map<String, Value>) -> Result<TraceRow, String> {
    let timestamp_ms = match object.get("timestamp") {
        None => return Err("no `timestamp` column".to_owned()),
        Some(value) => number(value)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("`timestamp` {value} is not a number of milliseconds ≥ 0"))?,
    };
    let prompt = match (object.get("input_length"), object.get("prompt")) {
        (Some(value), _) => TracePrompt::Tokens(
            whole(value)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("`input_length` {value} is not a whole number ≥ 1"))?,
        ),
        (None, Some(Value::String(text))) if !text.trim().is_empty() => {
            TracePrompt::Text(text.clone())
        }
        (None, Some(_)) => return Err("`prompt` is empty or not a string".to_owned()),
        (None, None) => return Err("neither `input_length` nor `prompt`".to_owned()),
    };
    let output_tokens = match object.get("output_length") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(value) => Some(
            whole(value)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("`output_length` {value} is not a whole number ≥ 1"))?,
        ),
    };
    let hash_ids = match object.get("hash_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(whole)
            .collect::<Option<Vec<u64>>>()
            .ok_or("`hash_ids` holds something other than whole numbers")?,
        Some(Value::String(ids)) => ids
            .split([' ', ';'])
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()
            .ok_or("`hash_ids` holds something other than whole numbers separated by spaces")?,
        Some(other) => return Err(format!("`hash_ids` {other} is not a list")),
    };
    Ok(TraceRow {
        timestamp_ms,
        prompt,
        output_tokens,
        hash_ids,
    })
}

/// A JSON number, or a CSV field holding one.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn whole(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> Result<Trace, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Trace::load(&path)
    }

    #[test]
    fn mooncake_rows_are_read_in_time_order_and_bad_rows_skipped_with_reasons() {
        let trace = load(
            "t.jsonl",
            "{\"timestamp\": 30, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [1, 2]}\n\
             {\"timestamp\": 10, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1]}\n\
             not json\n\
             {\"timestamp\": 20}\n\
             {\"timestamp\": -1, \"input_length\": 4}\n\
             {\"timestamp\": 40, \"input_length\": 4, \"hash_ids\": [\"x\"]}\n\
             \n\
             {\"timestamp\": 50, \"prompt\": \"hello there\"}\n",
        )
        .unwrap();
        let times: Vec<f64> = trace.rows.iter().map(|r| r.timestamp_ms).collect();
        assert_eq!(times, [10.0, 30.0, 50.0]);
        assert_eq!(trace.rows[0].prompt, TracePrompt::Tokens(600));
        assert_eq!(trace.rows[0].output_tokens, Some(3));
        assert_eq!(trace.rows[1].hash_ids, [1, 2]);
        assert_eq!(
            trace.rows[2].prompt,
            TracePrompt::Text("hello there".into())
        );
        assert_eq!(trace.rows[2].output_tokens, None);
        let skipped: Vec<usize> = trace.skipped.iter().map(|s| s.line).collect();
        assert_eq!(skipped, [3, 4, 5, 6]);
        assert!(trace.skipped[1]
            .reason
            .contains("neither `input_length` nor `prompt`"));
        assert!(trace.skipped[2].reason.contains("`timestamp` -1"));
    }

    #[test]
    fn csv_traces_take_the_same_columns() {
        let trace = load(
            "t.csv",
            "timestamp,input_length,output_length,hash_ids\n0,100,10,7 8\n5.5,50,,\n9,zero,1,\n",
        )
        .unwrap();
        assert_eq!(trace.rows.len(), 2);
        assert_eq!(trace.rows[0].hash_ids, [7, 8]);
        assert_eq!(trace.rows[1].timestamp_ms, 5.5);
        assert_eq!(trace.rows[1].output_tokens, None);
        assert!(trace.rows[1].hash_ids.is_empty());
        assert_eq!(trace.skipped[0].line, 4);
    }

    #[test]
    fn an_empty_unusable_or_missing_trace_is_an_error_naming_the_file() {
        let empty = load("t.jsonl", "\n").unwrap_err().to_string();
        assert!(empty.contains("t.jsonl: is empty"), "{empty}");
        let unusable = load("t.jsonl", "{\"ts\": 1}\n").unwrap_err().to_string();
        assert!(
            unusable.contains("has no usable row (line 1: no `timestamp` column)"),
            "{unusable}"
        );
        let wrong = load("t.parquet", "x").unwrap_err().to_string();
        assert!(wrong.contains("has the extension `parquet`"), "{wrong}");
        let missing = Trace::load(Path::new("/nonexistent/t.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }
}
