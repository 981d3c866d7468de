//! `llm-bench merge`: a sharded run's shard reports joined into the run's one report.

use std::io::Write;

use bench_core::config::{OutputFormat, OutputSpec};
use bench_report::merge::ShardReport;

use crate::cli::MergeArgs;
use crate::outputs::STDOUT;
use crate::{exit_codes, read_report, Failure};

/// Merges the shards, writes the report where `--output` says, and prints its summary table
/// (unless the report itself goes to standard output).
pub(crate) fn command(args: &MergeArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let to_stdout = args.output.iter().any(|p| p.as_os_str() == STDOUT);
    let outputs: Vec<OutputSpec> = args
        .output
        .iter()
        .filter(|p| p.as_os_str() != STDOUT)
        .map(|p| OutputSpec {
            path: p.to_string_lossy().into_owned(),
            format: None,
        })
        .collect();
    // Before reading anything: a file name that says no format is a typo to fix first.
    if let Some(odd) = outputs.iter().find(|o| o.resolved_format().is_err()) {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "invalid --output {}: cannot tell the report's format from its extension; name the file .json, .yaml, .yml, .csv or .html, or give `-` for JSON on standard output",
            odd.path
        )));
    }
    let mut shards = Vec::new();
    for path in &args.files {
        shards.push(ShardReport {
            source: path.display().to_string(),
            report: read_report(path)?,
        });
    }
    let report = bench_report::merge::merge(shards).map_err(Failure::bad_input)?;
    for output in &outputs {
        bench_runner::write_report(&report, output).map_err(Failure::runner)?;
    }
    if to_stdout {
        let json = bench_report::render::render(&report, OutputFormat::Json)
            .map_err(Failure::run_failed)?;
        let _ = write!(stdout, "{json}");
    } else {
        let table = bench_report::render::summary_table_within(
            &report,
            crate::terminal::width(std::io::stdout()),
        );
        let _ = write!(stdout, "{table}");
        for output in &outputs {
            let _ = writeln!(stdout, "wrote {}", output.path);
        }
    }
    Ok(exit_codes::OK)
}
