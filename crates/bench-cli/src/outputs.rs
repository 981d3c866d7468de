//! Where `run` writes its report: `--output` over the config's `[[output]]` list, `-` for
//! standard output, and a time-stamped file when nothing says where.

use std::path::PathBuf;

use bench_core::config::OutputSpec;
use bench_core::Config;

use crate::Failure;

/// The `--output` value that means standard output.
pub(crate) const STDOUT: &str = "-";

/// The files `--output` names (all but `-`), each with the format its extension says: a
/// config's `[[output]]` can set `format`, the flag cannot, so a name that says none is an error.
pub(crate) fn files(flags: &[PathBuf]) -> Result<Vec<OutputSpec>, Failure> {
    let outputs: Vec<OutputSpec> = flags
        .iter()
        .filter(|p| p.as_os_str() != STDOUT)
        .map(|p| OutputSpec {
            path: p.to_string_lossy().into_owned(),
            format: None,
        })
        .collect();
    if let Some(odd) = outputs.iter().find(|o| o.resolved_format().is_err()) {
        let extension = std::path::Path::new(&odd.path)
            .extension()
            .map_or("(none)".to_owned(), |e| {
                format!("`.{}`", e.to_string_lossy())
            });
        return Err(Failure::bad_input(anyhow::anyhow!(
            "invalid --output {}: cannot tell the report's format from the extension {extension}; name the file .json, .yaml, .yml, .csv or .html, or give `-` for JSON on standard output",
            odd.path
        )));
    }
    Ok(outputs)
}

/// Puts `--output` (when given) in place of the config's outputs and adds the default file when
/// there are none; returns whether the report also goes to standard output (`-o -`, as JSON),
/// which is then not in `config.outputs`, so nothing writes a file named `-`.
pub(crate) fn choose(
    config: &mut Config,
    flags: &[PathBuf],
    progress_json: Option<&PathBuf>,
    engines: usize,
) -> Result<bool, Failure> {
    let to_stdout = flags.iter().any(|p| p.as_os_str() == STDOUT);
    if to_stdout {
        if progress_json.is_some_and(|p| p.as_os_str() == STDOUT) {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--output - and --progress-json - both want standard output; send one of them to a file, e.g. --progress-json progress.jsonl"
            )));
        }
        if engines > 1 {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--output - writes one report, but --engines runs {engines}; give --output a file path (each engine's name is added before the extension)"
            )));
        }
    }
    if !flags.is_empty() {
        config.outputs = files(flags)?;
    }
    if config.outputs.is_empty() && !to_stdout {
        let stamp = bench_core::schema::Timestamp::now().to_string();
        let stamp: String = stamp
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(15)
            .collect();
        config.outputs.push(OutputSpec {
            path: format!("llm-bench-report-{stamp}.json"),
            format: None,
        });
    }
    Ok(to_stdout)
}
