//! `llm-bench completions SHELL`: a completion script generated from the command line's own
//! definition, so it never lags behind a flag.

use std::io::Write;

use clap::CommandFactory as _;

use crate::{exit_codes, Failure};

/// `llm-bench completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Writes the script for the chosen shell to `stdout`.
pub(crate) fn print(args: &CompletionsArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let mut command = crate::cli::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "llm-bench", &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if args.shell == clap_complete::Shell::Bash {
        // clap_complete's bash script spells a subcommand's state `llm__bench__subcmd__run`
        // where it is set but `llm__subcmd__bench__subcmd__run` where it is matched, for a bin
        // name with a hyphen (clap issue #6421), so no subcommand's flags would complete. The
        // binary's test completes `run --max-s` through bash.
        script = script.replace("llm__subcmd__bench__", "llm__bench__");
    }
    let _ = stdout.write_all(script.as_bytes());
    Ok(exit_codes::OK)
}
