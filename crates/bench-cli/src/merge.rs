//! `llm-bench merge`: a sharded run's shard reports joined into the run's one report.

use std::io::Write;

use bench_core::config::OutputFormat;
use bench_report::merge::ShardReport;

use crate::cli::MergeArgs;
use crate::outputs::STDOUT;
use crate::{exit_codes, read_report, Failure};

/// Merges the shards, writes the report where `--output` says, and prints its summary table
/// (unless the report itself goes to standard output).
pub(crate) fn command(args: &MergeArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let to_stdout = args.output.iter().any(|p| p.as_os_str() == STDOUT);
    // Before reading anything: a file name that says no format is a typo to fix first.
    let outputs = crate::outputs::files(&args.output)?;
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
