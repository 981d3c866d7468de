//! genai-bench traffic scenarios, with genai-bench's own grammar: `D(in,out)`,
//! `N(mean_in,std_in)/(mean_out,std_out)`, `U(min_in,max_in)/(min_out,max_out)` and the
//! one-group `U(max_in,max_out)` (minimums 1). Digits only, no spaces, as genai-bench's
//! regular expressions demand; an error points at the character that is wrong.

use std::fmt;

/// Token lengths of a request's prompt and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `D(in,out)`: always these lengths.
    Deterministic {
        /// Prompt tokens.
        input: u32,
        /// Output tokens.
        output: u32,
    },
    /// `N(mean_in,std_in)/(mean_out,std_out)`: normal lengths (at least 1 in, 2 out, as
    /// genai-bench samples them).
    Normal {
        /// Mean prompt tokens.
        input_mean: u32,
        /// Standard deviation of prompt tokens.
        input_stdev: u32,
        /// Mean output tokens.
        output_mean: u32,
        /// Standard deviation of output tokens.
        output_stdev: u32,
    },
    /// `U(min_in,max_in)/(min_out,max_out)` or `U(max_in,max_out)`: uniform lengths.
    Uniform {
        /// Smallest prompt.
        input_min: u32,
        /// Largest prompt.
        input_max: u32,
        /// Smallest output.
        output_min: u32,
        /// Largest output.
        output_max: u32,
    },
}

/// The forms a scenario may take, for error messages.
pub const VALID_FORMS: &str = "D(in,out), N(mean_in,std_in)/(mean_out,std_out), U(min_in,max_in)/(min_out,max_out), U(max_in,max_out)";

/// A scenario that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario as given.
    pub text: String,
    /// 1-based character position of the problem.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "traffic scenario `{}`, character {}: {}; valid forms: {VALID_FORMS}",
            self.text, self.position, self.message
        )
    }
}

impl std::error::Error for ScenarioError {}

struct Cursor<'a> {
    text: &'a str,
    chars: Vec<char>,
    at: usize,
}

impl Cursor<'_> {
    fn fail(&self, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            text: self.text.to_owned(),
            position: self.at + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, wanted: char) -> Result<(), ScenarioError> {
        match self.peek() {
            Some(c) if c == wanted => {
                self.at += 1;
                Ok(())
            }
            Some(c) if c.is_whitespace() => Err(self.fail("spaces are not allowed")),
            Some(c) => Err(self.fail(format!("expected `{wanted}`, found `{c}`"))),
            None => Err(self.fail(format!("expected `{wanted}`, found the end"))),
        }
    }

    fn number(&mut self) -> Result<u32, ScenarioError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == start {
            return match self.peek() {
                Some(c) if c.is_whitespace() => Err(self.fail("spaces are not allowed")),
                Some(c) => Err(self.fail(format!("expected a whole number, found `{c}`"))),
                None => Err(self.fail("expected a whole number, found the end")),
            };
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        digits.parse().map_err(|_| ScenarioError {
            text: self.text.to_owned(),
            position: start + 1,
            message: format!("{digits} is too large"),
        })
    }

    /// `(a,b)`
    fn pair(&mut self) -> Result<(u32, u32), ScenarioError> {
        self.expect('(')?;
        let a = self.number()?;
        self.expect(',')?;
        let b = self.number()?;
        self.expect(')')?;
        Ok((a, b))
    }

    fn end(&self) -> Result<(), ScenarioError> {
        match self.peek() {
            None => Ok(()),
            Some(c) if c.is_whitespace() => Err(self.fail("spaces are not allowed")),
            Some(c) => Err(self.fail(format!("unexpected `{c}` after the scenario"))),
        }
    }
}

impl Scenario {
    /// Parses one scenario.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let mut c = Cursor {
            text,
            chars: text.chars().collect(),
            at: 0,
        };
        let kind = c.peek().ok_or_else(|| c.fail("the scenario is empty"))?;
        c.at += 1;
        let scenario = match kind {
            'D' => {
                let (input, output) = c.pair()?;
                Scenario::Deterministic { input, output }
            }
            'N' => {
                let (input_mean, input_stdev) = c.pair()?;
                c.expect('/')?;
                let (output_mean, output_stdev) = c.pair()?;
                Scenario::Normal {
                    input_mean,
                    input_stdev,
                    output_mean,
                    output_stdev,
                }
            }
            'U' => {
                let first = c.pair()?;
                if c.peek() == Some('/') {
                    c.at += 1;
                    let second = c.pair()?;
                    Scenario::Uniform {
                        input_min: first.0,
                        input_max: first.1,
                        output_min: second.0,
                        output_max: second.1,
                    }
                } else {
                    Scenario::Uniform {
                        input_min: 1,
                        input_max: first.0,
                        output_min: 1,
                        output_max: first.1,
                    }
                }
            }
            'E' | 'R' | 'I' | 'A' => {
                c.at = 0;
                return Err(c.fail(format!("`{kind}` scenarios (embeddings, rerank, images, audio) are not text generation")));
            }
            'd' if text == "dataset" => {
                c.at = 0;
                return Err(
                    c.fail("`dataset` is not a traffic scenario here; use data.kind = \"file\"")
                );
            }
            other => {
                c.at = 0;
                return Err(c.fail(format!("unknown scenario type `{other}`")));
            }
        };
        c.end()?;
        scenario.check(text)?;
        Ok(scenario)
    }

    fn check(&self, text: &str) -> Result<(), ScenarioError> {
        let bad = |message: String| ScenarioError {
            text: text.to_owned(),
            position: 1,
            message,
        };
        match *self {
            Scenario::Deterministic { input, output } if input == 0 || output == 0 => {
                Err(bad("lengths must be at least 1".to_owned()))
            }
            Scenario::Normal {
                input_mean,
                output_mean,
                ..
            } if input_mean == 0 || output_mean == 0 => {
                Err(bad("means must be at least 1".to_owned()))
            }
            Scenario::Uniform {
                input_min,
                input_max,
                ..
            } if input_min > input_max => Err(bad(format!(
                "the prompt minimum {input_min} is larger than its maximum {input_max}"
            ))),
            Scenario::Uniform {
                output_min,
                output_max,
                ..
            } if output_min > output_max => Err(bad(format!(
                "the output minimum {output_min} is larger than its maximum {output_max}"
            ))),
            _ => Ok(()),
        }
    }

    /// genai-bench's spelling of a valid scenario: the text as given, each number without
    /// leading zeros (`D(0100,50)` is `D(100,50)`); `None` when it does not parse.
    pub fn canonical(text: &str) -> Option<String> {
        Self::parse(text).ok()?;
        let mut out = String::with_capacity(text.len());
        let mut digits = String::new();
        for c in text.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if !digits.is_empty() {
                let trimmed = digits.trim_start_matches('0');
                out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
                digits.clear();
            }
            if c != '\0' {
                out.push(c);
            }
        }
        Some(out)
    }

    /// Every number of the scenario, for bounds checks.
    pub(crate) fn numbers(&self) -> [u32; 4] {
        match *self {
            Scenario::Deterministic { input, output } => [input, output, 0, 0],
            Scenario::Normal {
                input_mean,
                input_stdev,
                output_mean,
                output_stdev,
            } => [input_mean, input_stdev, output_mean, output_stdev],
            Scenario::Uniform {
                input_min,
                input_max,
                output_min,
                output_max,
            } => [input_min, input_max, output_min, output_max],
        }
    }

    /// genai-bench's file-name form: `/` and `,` become `_`, parentheses go (`N100_20_40_10`).
    pub fn file_label(text: &str) -> String {
        text.chars()
            .filter(|c| *c != '(' && *c != ')')
            .map(|c| if c == '/' || c == ',' { '_' } else { c })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_form_parses() {
        assert_eq!(
            Scenario::parse("D(100,50)"),
            Ok(Scenario::Deterministic {
                input: 100,
                output: 50
            })
        );
        assert_eq!(
            Scenario::parse("N(480,240)/(300,150)"),
            Ok(Scenario::Normal {
                input_mean: 480,
                input_stdev: 240,
                output_mean: 300,
                output_stdev: 150
            })
        );
        assert_eq!(
            Scenario::parse("U(50,100)/(200,250)"),
            Ok(Scenario::Uniform {
                input_min: 50,
                input_max: 100,
                output_min: 200,
                output_max: 250
            })
        );
        assert_eq!(
            Scenario::parse("U(100,200)"),
            Ok(Scenario::Uniform {
                input_min: 1,
                input_max: 100,
                output_min: 1,
                output_max: 200
            })
        );
        assert_eq!(Scenario::file_label("N(100,20)/(40,10)"), "N100_20_40_10");
        for (given, canonical) in [
            ("D(100,50)", Some("D(100,50)")),
            ("D(0100,050)", Some("D(100,50)")),
            ("N(480,0)/(300,00)", Some("N(480,0)/(300,0)")),
            ("U(100,200)", Some("U(100,200)")),
            ("D(1, 2)", None),
        ] {
            assert_eq!(Scenario::canonical(given).as_deref(), canonical, "{given}");
        }
        assert_eq!(Scenario::file_label("D(100,50)"), "D100_50");
    }

    #[test]
    fn every_rejected_form_points_at_the_character() {
        let cases = [
            ("D(100, 50)", 7, "spaces are not allowed"),
            (" D(1,2)", 1, "unknown scenario type ` `"),
            ("D(100,50", 9, "expected `)`, found the end"),
            ("D(100)", 6, "expected `,`, found `)`"),
            ("D(1.5,2)", 4, "expected `,`, found `.`"),
            ("D(-1,2)", 3, "expected a whole number, found `-`"),
            ("D(1,2)/(3,4)", 7, "unexpected `/` after the scenario"),
            ("N(1,2)", 7, "expected `/`, found the end"),
            ("N(1,2)/(3)", 10, "expected `,`, found `)`"),
            ("U(1,2)/", 8, "expected `(`, found the end"),
            ("X(1,2)", 1, "unknown scenario type `X`"),
            ("d(1,2)", 1, "unknown scenario type `d`"),
            (
                "E(100)",
                1,
                "`E` scenarios (embeddings, rerank, images, audio) are not text generation",
            ),
            (
                "R(1024,128)",
                1,
                "`R` scenarios (embeddings, rerank, images, audio) are not text generation",
            ),
            (
                "dataset",
                1,
                "`dataset` is not a traffic scenario here; use data.kind = \"file\"",
            ),
            ("", 1, "the scenario is empty"),
            ("D(99999999999,1)", 3, "99999999999 is too large"),
            ("D(0,5)", 1, "lengths must be at least 1"),
            (
                "U(10,5)/(1,2)",
                1,
                "the prompt minimum 10 is larger than its maximum 5",
            ),
        ];
        for (text, position, message) in cases {
            let error = Scenario::parse(text).unwrap_err();
            assert_eq!(
                (error.position, error.message.as_str()),
                (position, message),
                "{text}"
            );
        }
        let shown = Scenario::parse("D(100, 50)").unwrap_err().to_string();
        assert!(shown.starts_with("traffic scenario `D(100, 50)`, character 7: spaces are not allowed; valid forms: D(in,out)"), "{shown}");
    }
}

/// Property tests: no string makes the grammar panic, and every well-formed scenario parses.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_string_parses_or_fails_with_a_message(text in "\\PC{0,24}") {
            if let Err(error) = Scenario::parse(&text) {
                prop_assert!(!error.to_string().is_empty());
            }
        }

        #[test]
        fn near_misses_of_the_grammar_never_panic(text in "[DNUEIR]?[(]?[0-9, /()]{0,16}") {
            let _ = Scenario::parse(&text);
        }

        #[test]
        fn every_well_formed_scenario_parses(a in 1u32..100_000, b in 1u32..100_000, c in 0u32..1000, d in 0u32..1000) {
            let (lo, hi) = (a.min(b), a.max(b));
            for text in [
                format!("D({a},{b})"),
                format!("N({a},{c})/({b},{d})"),
                format!("U({lo},{hi})/({lo},{hi})"),
            ] {
                let parsed = Scenario::parse(&text);
                prop_assert!(parsed.is_ok(), "{} does not parse: {:?}", text, parsed);
            }
        }
    }
}
