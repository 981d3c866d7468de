//! The command's documentation, generated from and checked against its definition: the man
//! pages committed in `docs/man/` (one per command, as `git` has), and `docs/cli.md`, whose
//! commands and flags a test compares with the command line's.

use clap::CommandFactory as _;

/// Every man page: `llm-bench.1` and `llm-bench-<command>.1`, with its roff text.
pub(crate) fn man_pages() -> Vec<(String, String)> {
    let mut command = crate::cli::Cli::command();
    // Built, subcommands get their display names (`llm-bench-run`) and inherited settings.
    command.build();
    let mut pages = Vec::new();
    collect(&command, &mut pages);
    pages
}

fn collect(command: &clap::Command, pages: &mut Vec<(String, String)>) {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    let mut roff = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut roff)
        .expect("rendering into memory cannot fail");
    pages.push((
        format!("{name}.1"),
        String::from_utf8_lossy(&roff).into_owned(),
    ));
    for sub in command.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            collect(sub, pages);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    fn docs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
    }

    /// The committed man pages must match the command line. `UPDATE_MAN_PAGES=1 cargo test`
    /// (or `cargo xtask codegen`) rewrites them.
    #[test]
    fn committed_man_pages_are_fresh() {
        let dir = docs().join("man");
        let update = std::env::var_os("UPDATE_MAN_PAGES").is_some();
        let pages = man_pages();
        let mut stale = Vec::new();
        for (name, text) in &pages {
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name.clone());
            }
        }
        let expected: BTreeSet<String> = pages.into_iter().map(|(name, _)| name).collect();
        let committed = std::fs::read_dir(&dir).into_iter().flatten();
        for entry in committed {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !expected.contains(&name) {
                if update {
                    std::fs::remove_file(dir.join(&name)).unwrap();
                } else {
                    stale.push(format!("{name} (no such command)"));
                }
            }
        }
        assert!(
            stale.is_empty(),
            "stale man pages in docs/man: {stale:?}; run `cargo xtask codegen` and commit them"
        );
    }

    #[test]
    fn the_man_page_names_every_command() {
        let pages = man_pages();
        let main = &pages[0];
        assert_eq!(main.0, "llm-bench.1");
        for command in ["run", "validate", "completions", "schema"] {
            assert!(
                pages
                    .iter()
                    .any(|(n, _)| n == &format!("llm-bench-{command}.1")),
                "{command}"
            );
            assert!(
                main.1.contains(&format!("llm\\-bench\\-{command}(1)")),
                "{command}"
            );
        }
    }

    /// `docs/cli.md` shows every command in its synopsis and names every flag of each (the
    /// mock server's knobs are in docs/mock-server.md); every flag it names exists.
    #[test]
    fn docs_cli_md_and_the_command_line_agree() {
        let text = std::fs::read_to_string(docs().join("cli.md")).unwrap();
        let synopsis = text
            .split("```")
            .nth(1)
            .expect("docs/cli.md opens with a synopsis block");
        let command = crate::cli::Cli::command();
        let mut flags = BTreeSet::from(["--help".to_owned(), "--version".to_owned()]);
        let mut problems = Vec::new();
        // Nested commands (`k8s job`) by their full name.
        let mut subs: Vec<(String, &clap::Command)> = Vec::new();
        for sub in command.get_subcommands() {
            subs.push((sub.get_name().to_owned(), sub));
            for nested in sub.get_subcommands() {
                subs.push((format!("{} {}", sub.get_name(), nested.get_name()), nested));
            }
        }
        for (name, sub) in subs {
            let name = name.as_str();
            if name == "help" || name.ends_with(" help") {
                continue;
            }
            if !synopsis.contains(&format!("llm-bench {name}")) {
                problems.push(format!("`llm-bench {name}` is not in the synopsis"));
            }
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                let flag = format!("--{long}");
                if name != "mock-server" && !text.contains(&format!("`{flag}")) {
                    problems.push(format!("`{flag}` of `{name}` is not in docs/cli.md"));
                }
                flags.insert(flag);
            }
        }
        let documented: BTreeSet<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| {
                w.strip_prefix("--")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_lowercase()))
            })
            .map(|w| w.trim_end_matches('-').to_owned())
            .collect();
        for flag in documented.difference(&flags) {
            problems.push(format!("docs/cli.md names `{flag}`, which no command has"));
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
