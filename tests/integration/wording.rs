//! The words of common mistakes (issue 22): each names what is wrong and what the command line
//! can do about it.

use bench_cli::exit_codes;
use bench_tests::cli::llm_bench;

use super::fixture;

#[test]
fn a_wrong_type_is_said_in_words_and_blamed_on_the_layer_that_gave_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("base.toml");
    let text = std::fs::read_to_string(fixture("config/echo.toml")).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "max_requests = 20",
            "max_requests = 20\nmax_seconds = \"two\"",
        ),
    )
    .unwrap();
    let out = llm_bench(["validate".as_ref(), "-c".as_ref(), path.as_os_str()]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert_eq!(
        out.stderr,
        format!(
            "error: invalid config {}: invalid `constraints.max_seconds`: got the string \"two\", expected a number\n",
            path.display()
        )
    );

    let echo = fixture("config/echo.toml");
    let out = llm_bench([
        "validate".as_ref(),
        "-c".as_ref(),
        echo.as_os_str(),
        "--set".as_ref(),
        "constraints.max_seconds=two".as_ref(),
    ]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert_eq!(
        out.stderr,
        "error: invalid --set constraints.max_seconds=two: invalid `constraints.max_seconds`: got the string \"two\", expected a number\n"
    );
    let out = llm_bench([
        "validate".as_ref(),
        "-c".as_ref(),
        echo.as_os_str(),
        "--set".as_ref(),
        "profile.streams=[0]".as_ref(),
    ]);
    assert!(
        out.stderr
            .starts_with("error: invalid --set profile.streams=[0]: invalid `profile.streams[0]`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_config_given_where_a_report_is_expected_is_called_a_config() {
    for config in [fixture("config/echo.toml"), fixture("config/legacy.json")] {
        let out = llm_bench(["report".as_ref(), config.as_os_str()]);
        assert_eq!(out.code, exit_codes::BAD_INPUT);
        assert_eq!(
            out.stderr,
            format!(
                "error: {0} is a config, not a report; `report` and `compare` read a report written by `llm-bench run` (.json, .yaml or .yml); to run this config: llm-bench run --config {0}\n",
                config.display()
            )
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, "{\"rows\": []}").unwrap();
    let out = llm_bench(["report".as_ref(), other.as_os_str()]);
    assert_eq!(out.code, exit_codes::BAD_INPUT);
    assert!(
        out.stderr
            .contains("is not an llm-bench report (schema version"),
        "{}",
        out.stderr
    );
}
