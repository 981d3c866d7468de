//! Repository rules, checked as ordinary tests so `cargo nextest run` catches them.

mod tests {
    use std::fs;

    fn root() -> std::path::PathBuf {
        super::super::workspace_root()
    }

    /// Every engine crate must be force-linked by bench-runner (which the binary and the Python
    /// package use), or its registration vanishes.
    #[test]
    fn every_engine_crate_is_force_linked_by_the_runner() {
        let engines_rs =
            fs::read_to_string(root().join("crates/bench-runner/src/engines.rs")).unwrap();
        for entry in fs::read_dir(root().join("crates")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(rest) = name.strip_prefix("engine-") {
                let line = format!("use engine_{} as _;", rest.replace('-', "_"));
                assert!(
                    engines_rs.contains(&line),
                    "crates/{name} is not force-linked: add `{line}` to crates/bench-runner/src/engines.rs"
                );
            }
        }
    }

    /// Every crate takes the workspace lints.
    #[test]
    fn every_crate_uses_the_workspace_lints() {
        let mut manifests = vec![
            root().join("tests/Cargo.toml"),
            root().join("xtask/Cargo.toml"),
        ];
        for entry in fs::read_dir(root().join("crates")).unwrap() {
            manifests.push(entry.unwrap().path().join("Cargo.toml"));
        }
        for manifest in manifests {
            let text = fs::read_to_string(&manifest).unwrap();
            // PyO3's generated code is unsafe: the Python module keeps its own copy of the
            // lints with `unsafe_code` denied (so its own code stays safe) instead of forbidden.
            if manifest.ends_with("bench-python/Cargo.toml") {
                assert!(
                    text.contains("[lints.rust]") && text.contains("unsafe_code = \"deny\""),
                    "{} must keep its own lint table with unsafe_code denied",
                    manifest.display()
                );
                continue;
            }
            assert!(
                text.contains("[lints]\nworkspace = true"),
                "{} lacks `[lints] workspace = true`",
                manifest.display()
            );
        }
    }
}
