//! Rows of a Parquet file (the format Hugging Face datasets are stored in), as the JSON
//! objects the other data files give, so column detection and row skipping are the same.
//!
//! Only the columns that can hold a prompt, a conversation or an output length are read:
//! a dataset's other columns (long answers, images) are never decoded.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;
use serde_json::{Map, Value};

use super::Records;

/// The rows of the Parquet file at `path`, numbered from 1, with only its top-level columns
/// that `prompt` or `length` accepts; an error names what is wrong with the file
/// (`no_prompt` when no column is a `prompt` one: then no row could be used).
pub(super) fn rows(
    path: &Path,
    prompt: impl Fn(&str) -> bool,
    length: impl Fn(&str) -> bool,
    no_prompt: &str,
) -> Result<Records, String> {
    let wanted = |column: &str| prompt(column) || length(column);
    let file = File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| format!("is not a readable Parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema();
    let fields = schema.get_fields();
    if !fields.iter().any(|f| prompt(f.name())) {
        let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
        return Err(format!("{no_prompt} (its columns: {})", names.join(", ")));
    }
    let columns: Vec<Arc<Type>> = fields
        .iter()
        .filter(|f| wanted(f.name()))
        .cloned()
        .collect();
    // Only the codecs Hugging Face's and pyarrow's files use are built in (snappy, pyarrow's
    // default, and zstd): say so before a page fails to decompress.
    for chunk in reader
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|g| g.columns())
    {
        let codec = chunk.compression();
        let column = chunk
            .column_path()
            .parts()
            .first()
            .map_or("", String::as_str);
        if wanted(column)
            && !matches!(
                codec,
                Compression::UNCOMPRESSED | Compression::SNAPPY | Compression::ZSTD(_)
            )
        {
            return Err(format!(
                "has its column `{column}` compressed with {codec}; llm-bench reads Parquet that is uncompressed or compressed with snappy or zstd (as Hugging Face and pyarrow write it): rewrite it, e.g. with pyarrow: pq.write_table(pq.read_table(path), new_path, compression=\"zstd\")"
            ));
        }
    }
    let projection = Type::group_type_builder(schema.name())
        .with_fields(columns)
        .build()
        .map_err(|e| format!("cannot select its prompt columns: {e}"))?;
    let iter = reader
        .get_row_iter(Some(projection))
        .map_err(|e| format!("cannot be read as Parquet rows: {e}"))?;
    let mut records = Vec::new();
    for (i, row) in iter.enumerate() {
        // A row that cannot be decoded means a damaged file, not an odd row: stop there.
        let row = row.map_err(|e| format!("cannot be read at row {}: {e}", i + 1))?;
        // A null cell is a value the row does not have, as a key a JSON line leaves out.
        let object: Map<String, Value> = row
            .get_column_iter()
            .filter(|(_, field)| !matches!(field, Field::Null))
            .map(|(name, field)| (name.clone(), json(field)))
            .collect();
        records.push((i + 1, Ok(object)));
    }
    Ok(records)
}

/// A Parquet value as JSON: text, numbers, lists (a conversation's turns) and groups (a
/// turn) as themselves; binary that is UTF-8 as text, other binary as an empty list (not
/// text, so never a prompt); other values (dates, decimals) as their text.
fn json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => (*n).into(),
        Field::Short(n) => (*n).into(),
        Field::Int(n) => (*n).into(),
        Field::Long(n) => (*n).into(),
        Field::UByte(n) => (*n).into(),
        Field::UShort(n) => (*n).into(),
        Field::UInt(n) => (*n).into(),
        Field::ULong(n) => (*n).into(),
        Field::Float(x) => f64::from(*x).into(),
        Field::Double(x) => (*x).into(),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => Value::Array(Vec::new()),
        },
        Field::Group(row) => Value::Object(
            row.get_column_iter()
                .map(|(name, field)| (name.clone(), json(field)))
                .collect(),
        ),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(json).collect()),
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(key, value)| match json(key) {
                    Value::String(key) => (key, json(value)),
                    other => (other.to_string(), json(value)),
                })
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}
