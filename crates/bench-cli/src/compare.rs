//! `llm-bench compare`: saved reports side by side.

use std::io::Write;

use anyhow::Context as _;

use crate::cli::CompareArgs;
use crate::{exit_codes, read_report, Failure};

/// Prints the comparison, writes it where asked, and exits 3 when a value was flagged.
pub(crate) fn command(args: &CompareArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--tolerance {} must be zero or more, e.g. 0.1 for 10 %",
            args.tolerance
        )));
    }
    let mut reports = Vec::new();
    for path in &args.files {
        let label = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        reports.push((label, read_report(path)?));
    }
    let comparison = bench_report::compare::compare(&reports, args.tolerance);
    let _ = write!(stdout, "{}", comparison.table());
    for path in &args.output {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let text = match extension.as_deref() {
            Some("html" | "htm") => comparison.html(),
            Some("json") => serde_json::to_string_pretty(&comparison)
                .context("cannot render the comparison as JSON")
                .map_err(Failure::run_failed)?,
            _ => {
                return Err(Failure::bad_input(anyhow::anyhow!(
                    "cannot tell the format of {} from its extension; use .html or .json",
                    path.display()
                )))
            }
        };
        bench_runner::write_atomically(path, text.as_bytes()).map_err(Failure::run_failed)?;
        let _ = writeln!(stdout, "wrote {}", path.display());
    }
    Ok(if comparison.flagged > 0 {
        exit_codes::DIFFERENT
    } else {
        exit_codes::OK
    })
}
