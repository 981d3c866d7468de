//! Repository rules, checked as ordinary tests so `cargo nextest run` catches them.

use std::collections::{BTreeMap, BTreeSet};

/// How a crate depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Dev,
    Build,
}

/// What a manifest says about the workspace graph: its package name and every dependency,
/// under its real package name (`package = "..."` renames are followed).
#[derive(Debug)]
struct Manifest {
    name: String,
    dependencies: Vec<(String, Kind)>,
}

/// Reads the package name and the dependency tables of a `Cargo.toml` (`[dependencies]`,
/// `[dev-dependencies]`, `[build-dependencies]`, their `[target.'cfg(...)'.*]` forms and
/// `[dependencies.name]` tables). Plain text scanning: enough for the manifests of this
/// repository, which write one dependency per line.
fn parse_manifest(text: &str) -> Manifest {
    let mut name = String::new();
    let mut dependencies = Vec::new();
    // The current table: a list of dependencies, one dependency (`[dependencies.x]`), or other.
    enum Table {
        List(Kind),
        One(usize),
        Package,
        Other,
    }
    let mut table = Table::Other;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            let header = header.strip_prefix("target.").map_or(header, |rest| {
                // `target.'cfg(unix)'.dependencies`: what follows the quoted platform.
                rest.rsplit_once(['\'', '"'])
                    .map_or(rest, |(_, tail)| tail.trim_start_matches('.'))
            });
            let (section, one) = match header.split_once('.') {
                Some((section, dep)) => (section, Some(dep.trim_matches('"'))),
                None => (header, None),
            };
            let kind = match section {
                "dependencies" => Some(Kind::Normal),
                "dev-dependencies" => Some(Kind::Dev),
                "build-dependencies" => Some(Kind::Build),
                _ => None,
            };
            table = match (kind, one) {
                (Some(kind), None) => Table::List(kind),
                (Some(kind), Some(dep)) => {
                    dependencies.push((dep.to_owned(), kind));
                    Table::One(dependencies.len() - 1)
                }
                (None, _) if header == "package" => Table::Package,
                (None, _) => Table::Other,
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        match table {
            Table::Package if key == "name" => name = value.trim_matches('"').to_owned(),
            Table::List(kind) => {
                let dep = key.split('.').next().unwrap_or_default().trim_matches('"');
                let dep = renamed(value).unwrap_or(dep);
                dependencies.push((dep.to_owned(), kind));
            }
            Table::One(index) if key == "package" => {
                dependencies[index].0 = value.trim_matches('"').to_owned();
            }
            _ => {}
        }
    }
    Manifest { name, dependencies }
}

/// The `package = "..."` of an inline dependency table, if it renames the dependency.
fn renamed(value: &str) -> Option<&str> {
    let rest = value
        .split("package")
        .nth(1)?
        .trim_start()
        .strip_prefix('=')?;
    rest.trim_start().strip_prefix('"')?.split('"').next()
}

/// The crates only front ends (and the tests and tasks that drive them) may use.
const FRONT_ENDS: [&str; 4] = ["bench-cli", "bench-python", "bench-tests", "xtask"];

/// Why `krate` must not depend on `dep`, both workspace crates, if it must not: the
/// dependency directions of docs/ARCHITECTURE.md ("Dependency rules").
fn forbidden(krate: &str, dep: &str, kind: Kind) -> Option<&'static str> {
    let engine = |name: &str| name.starts_with("engine-");
    if engine(krate) {
        if engine(dep) {
            return Some("engines never depend on each other");
        }
        if dep == "bench-report" || dep == "bench-runner" || FRONT_ENDS.contains(&dep) {
            return Some(
                "engines depend on no report writer, runner or front end (they are below them)",
            );
        }
        if dep == "bench-mock" && kind != Kind::Dev {
            return Some("engines use the mock server in their tests only (a dev-dependency)");
        }
    }
    match krate {
        "bench-core" => return Some("bench-core, the API boundary, depends on no workspace crate"),
        "bench-timer" => return Some("bench-timer depends on no workspace crate"),
        "bench-report" if dep != "bench-core" => {
            return Some("bench-report depends on bench-core only among workspace crates")
        }
        "bench-subprocess"
            if !(matches!(dep, "bench-core" | "bench-target" | "bench-scrape")
                || dep == "bench-mock" && kind == Kind::Dev) =>
        {
            return Some(
                "bench-subprocess depends on bench-core, bench-target and bench-scrape only among workspace crates (and on bench-mock in its tests)",
            )
        }
        "bench-data" if dep == "bench-core" => {
            return Some(
                "bench-data does not depend on bench-core (engines map the config onto it)",
            )
        }
        "bench-mock" if engine(dep) => return Some("the mock server depends on no engine"),
        "bench-runner" if dep == "bench-cli" || dep == "bench-python" => {
            return Some("bench-runner is below the front ends and never depends on one")
        }
        _ => {}
    }
    if dep == "bench-runner" && !FRONT_ENDS.contains(&krate) {
        return Some(
            "only the front ends (bench-cli, bench-python), the tests and xtask use bench-runner",
        );
    }
    None
}

/// Every broken dependency rule among `manifests` (path, text), as one line each.
fn dependency_violations(manifests: &[(String, String)]) -> Vec<String> {
    let parsed: Vec<(&str, Manifest)> = manifests
        .iter()
        .map(|(path, text)| (path.as_str(), parse_manifest(text)))
        .collect();
    let ours: BTreeSet<&str> = parsed.iter().map(|(_, m)| m.name.as_str()).collect();
    let mut violations = Vec::new();
    for (path, manifest) in &parsed {
        for (dep, kind) in &manifest.dependencies {
            if !ours.contains(dep.as_str()) {
                continue;
            }
            if let Some(rule) = forbidden(&manifest.name, dep, *kind) {
                let table = match kind {
                    Kind::Normal => "",
                    Kind::Dev => " (as a dev-dependency)",
                    Kind::Build => " (as a build-dependency)",
                };
                violations.push(format!(
                    "{path}: {} must not depend on {dep}{table}: {rule}",
                    manifest.name
                ));
            }
        }
    }
    violations
}

/// `text` with comments, string and character literals blanked out (newlines kept, so line
/// numbers still hold).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    blank(&mut out, ' ');
                    blank(&mut out, ' ');
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    blank(&mut out, ' ');
                    blank(&mut out, ' ');
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == '"' {
            // A raw string `r#"..."#` when `r` and hashes come right before.
            let mut hashes = 0;
            while i > hashes && chars[i - hashes - 1] == '#' {
                hashes += 1;
            }
            let raw = i > hashes && chars[i - hashes - 1] == 'r';
            let hashes = if raw { hashes } else { 0 };
            blank(&mut out, c);
            i += 1;
            while i < chars.len() {
                if !raw && chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                } else if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    let end = if raw { hashes } else { 0 };
                    for _ in 0..=end {
                        blank(&mut out, ' ');
                    }
                    i += 1 + end;
                    break;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal (a lifetime has no closing quote).
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            blank(&mut out, ' ');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `code` with every `#[cfg(test)]` item (a test module, a test-only function) blanked out.
fn without_tests(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= out.len() {
        if out[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        // The item ends at its first `;` before any `{`, or with its braces balanced.
        let mut j = i;
        let mut depth = 0;
        while j < out.len() {
            match out[j] {
                ';' if depth == 0 => break,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let end = j.min(out.len() - 1) + 1;
        for c in &mut out[i..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j + 1;
    }
    out.into_iter().collect()
}

/// The first path segment of each `crate::` path in `code`, with its line number: `crate::a::B`
/// and `crate::{a::B, c}` give `a` and `c`.
fn crate_references(code: &str) -> Vec<(String, usize)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(ident) {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Items at the top level of the group, split by commas outside nested braces.
            let mut depth = 0;
            let mut start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && ident(c) => {
                        let name: String = group[k..].chars().take_while(|&c| ident(c)).collect();
                        found.push((name, line));
                        start = false;
                    }
                    c if start && !c.is_whitespace() => start = false,
                    _ => {}
                }
            }
        } else {
            let name: String = rest.chars().take_while(|&c| ident(c)).collect();
            if !name.is_empty() {
                found.push((name, line));
            }
        }
    }
    found
}

/// A module's uses of other modules: the used module, and where (file and line) it is used first.
type ModuleGraph = BTreeMap<String, BTreeMap<String, String>>;

/// The graph of a crate's top-level modules from its source files (path relative to `src/`,
/// text): module `a` uses `b` when a file of `a` (`a.rs` or under `a/`) names `crate::b`, or
/// a name the crate root re-exports from `b`. Comments and `#[cfg(test)]` items do not count.
fn module_graph(files: &[(String, String)]) -> ModuleGraph {
    let root = files
        .iter()
        .find(|(path, _)| path == "lib.rs")
        .map(|(_, text)| code_only(text))
        .unwrap_or_default();
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for item in root.split(';') {
        let mut item = item.split_whitespace().collect::<Vec<_>>().join(" ");
        // Attributes first (`#[doc(hidden)]`), then the visibility.
        while let Some(end) = item.strip_prefix("#[").and_then(|_| item.find(']')) {
            item = item[end + 1..].trim_start().to_owned();
        }
        let item = ["pub(crate) ", "pub "]
            .iter()
            .find_map(|v| item.strip_prefix(v))
            .unwrap_or(&item);
        if let Some(module) = item.strip_prefix("mod ") {
            modules.insert(module.trim().to_owned());
        } else if let Some((module, names)) =
            item.strip_prefix("use ").and_then(|p| p.split_once("::"))
        {
            // `pub use schema::Report`, `pub use engine::{A, B}`
            for name in names.trim_matches(['{', '}']).split(',') {
                let name = name.rsplit("::").next().unwrap_or_default().trim();
                reexports.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    let mut graph = ModuleGraph::new();
    for (path, text) in files {
        if path == "lib.rs" || path.ends_with("/tests.rs") || path.contains("/tests/") {
            continue;
        }
        let from = path
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".rs");
        let uses = graph.entry(from.to_owned()).or_default();
        for (name, line) in crate_references(&without_tests(&code_only(text))) {
            let to = if modules.contains(&name) {
                name
            } else if let Some(module) = reexports.get(&name).filter(|m| modules.contains(*m)) {
                module.clone()
            } else {
                continue;
            };
            if to != from {
                uses.entry(to).or_insert_with(|| format!("{path}:{line}"));
            }
        }
    }
    graph
}

/// A cycle of `graph`, as the modules around it (the first repeated at the end), if it has one.
fn find_cycle(graph: &ModuleGraph) -> Option<Vec<String>> {
    fn visit(
        graph: &ModuleGraph,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

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

    /// The manifest of every workspace member.
    fn manifests() -> Vec<std::path::PathBuf> {
        let mut manifests = vec![
            root().join("tests/Cargo.toml"),
            root().join("xtask/Cargo.toml"),
        ];
        for entry in fs::read_dir(root().join("crates")).unwrap() {
            manifests.push(entry.unwrap().path().join("Cargo.toml"));
        }
        manifests.sort();
        manifests
    }

    /// Every crate takes the workspace lints.
    #[test]
    fn every_crate_uses_the_workspace_lints() {
        for manifest in manifests() {
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

    /// Crates depend on each other only in the directions docs/ARCHITECTURE.md states.
    #[test]
    fn crates_depend_on_each_other_only_in_the_documented_directions() {
        let manifests: Vec<(String, String)> = manifests()
            .into_iter()
            .map(|path| {
                let text = fs::read_to_string(&path).unwrap();
                let relative = path.strip_prefix(root()).unwrap_or(&path);
                (relative.display().to_string(), text)
            })
            .collect();
        let violations = super::dependency_violations(&manifests);
        assert!(
            violations.is_empty(),
            "dependency rules broken (docs/ARCHITECTURE.md, \"Dependency rules\"):\n{}",
            violations.join("\n")
        );
    }

    #[test]
    fn the_dependency_rules_name_the_crate_and_the_forbidden_dependency() {
        let manifest = |name: &str, body: &str| {
            (
                format!("crates/{name}/Cargo.toml"),
                format!("[package]\nname = \"{name}\"\n\n{body}"),
            )
        };
        let manifests = [
            manifest(
                "engine-a",
                "[dependencies]\nbench-core.workspace = true\nengine-b = { path = \"../engine-b\" }\n\
                 bench-mock = { workspace = true, features = [\"x\"] } # not only in tests\n\
                 [dev-dependencies]\nbench-mock.workspace = true\n",
            ),
            manifest("engine-b", "[dependencies.runner]\npackage = \"bench-runner\"\npath = \"x\"\n"),
            manifest("bench-core", "[target.'cfg(unix)'.dev-dependencies]\nbench-timer.workspace = true\n"),
            manifest("bench-report", "[dependencies]\nbench-core.workspace = true\nserde.workspace = true\n"),
            manifest("bench-subprocess", "[dependencies]\nbench-core.workspace = true\nbench-target.workspace = true\n"),
            manifest("bench-data", "[dependencies]\nbench-core.workspace = true\n"),
            manifest("bench-timer", ""),
            manifest("bench-target", ""),
            manifest("bench-mock", ""),
            manifest("bench-runner", ""),
            manifest("bench-cli", "[dependencies]\nbench-runner.workspace = true\n"),
        ];
        assert_eq!(
            super::dependency_violations(&manifests),
            [
                "crates/engine-a/Cargo.toml: engine-a must not depend on engine-b: engines never depend on each other",
                "crates/engine-a/Cargo.toml: engine-a must not depend on bench-mock: engines use the mock server in their tests only (a dev-dependency)",
                "crates/engine-b/Cargo.toml: engine-b must not depend on bench-runner: engines depend on no report writer, runner or front end (they are below them)",
                "crates/bench-core/Cargo.toml: bench-core must not depend on bench-timer (as a dev-dependency): bench-core, the API boundary, depends on no workspace crate",
                "crates/bench-data/Cargo.toml: bench-data must not depend on bench-core: bench-data does not depend on bench-core (engines map the config onto it)",
            ]
        );
    }

    /// The source files of a crate, paths relative to its `src/`.
    fn sources(src: &std::path::Path) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let mut dirs = vec![src.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(src).unwrap().display().to_string();
                    files.push((relative, fs::read_to_string(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    }

    /// bench-core's modules form layers (docs/ARCHITECTURE.md): none uses a module that uses it.
    #[test]
    fn bench_core_modules_import_each_other_in_no_circle() {
        let graph = super::module_graph(&sources(&root().join("crates/bench-core/src")));
        assert!(graph.contains_key("config") && graph.contains_key("schema"));
        if let Some(cycle) = super::find_cycle(&graph) {
            let uses: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} uses crate::{} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            panic!(
                "bench-core's modules import each other in a circle: {}\n{}\n\
                 move what both sides need into the lower module (the layers are in \
                 docs/ARCHITECTURE.md and bench-core's lib.rs)",
                cycle.join(" -> "),
                uses.join("\n")
            );
        }
    }

    #[test]
    fn the_module_check_sees_through_groups_and_reexports_but_not_comments_or_tests() {
        let files = |config: &str| {
            vec![
                (
                    "lib.rs".to_owned(),
                    "pub mod config;\nmod schema;\n#[doc(hidden)]\npub use schema::{\n    Report, Tool,\n};\npub use inventory;\n"
                        .to_owned(),
                ),
                ("schema.rs".to_owned(), "use crate::config::Config;\n".to_owned()),
                ("config.rs".to_owned(), "mod plan;\n".to_owned()),
                ("config/plan.rs".to_owned(), config.to_owned()),
            ]
        };
        let clean = [
            "// use crate::schema::Report;\nfn f() {}\n",
            "/* crate::schema */ const S: &str = \"crate::schema /*\"; const C: char = '\"';\n",
            "#[cfg(test)]\nmod tests {\n    use crate::schema::Report;\n}\n",
            "use crate::inventory;\nuse bench_crate::schema;\n",
        ];
        for text in clean {
            let graph = super::module_graph(&files(text));
            assert_eq!(super::find_cycle(&graph), None, "{text}");
        }
        let cyclic = [
            "use crate::schema::Report;\n",
            "use crate::{config::Data, schema::Report};\n",
            "fn f(r: &crate::Report) {}\n",
            "const C: char = '\"'; fn f<'a>(r: &'a crate::Tool) {}\n",
        ];
        for text in cyclic {
            let graph = super::module_graph(&files(text));
            assert_eq!(
                super::find_cycle(&graph),
                Some(vec![
                    "config".to_owned(),
                    "schema".to_owned(),
                    "config".to_owned()
                ]),
                "{text}"
            );
            assert_eq!(graph["config"]["schema"], "config/plan.rs:1");
        }
    }
}
