//! The Prometheus text exposition format (0.0.4), as much as a scraper needs: samples with
//! their labels and values, and the type each family declares. Malformed lines are counted and
//! skipped, never fatal.

use std::collections::HashMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample<'a> {
    pub(crate) name: &'a str,
    /// The `le` label of a histogram bucket, parsed; `None` for other samples.
    pub(crate) le: Option<f64>,
    pub(crate) value: f64,
}

/// A page of samples.
#[derive(Debug, Default)]
pub(crate) struct Page<'a> {
    pub(crate) samples: Vec<Sample<'a>>,
    /// `# TYPE` of each family.
    pub(crate) types: HashMap<&'a str, &'a str>,
    /// Lines that were neither comments nor samples.
    pub(crate) malformed: usize,
}

/// Parses `text`.
pub(crate) fn parse(text: &str) -> Page<'_> {
    let mut page = Page::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    page.types.insert(name, kind);
                }
            }
            continue;
        }
        match sample(line) {
            Some(s) => page.samples.push(s),
            None => page.malformed += 1,
        }
    }
    page
}

/// `name{labels} value [timestamp]`.
fn sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut le = None;
    if let Some(after) = rest.strip_prefix('{') {
        let (labels, tail) = labels(after)?;
        for (key, value) in labels {
            if key == "le" {
                le = Some(number(&value)?);
            }
        }
        rest = tail;
    }
    let value = number(rest.split_whitespace().next()?)?;
    Some(Sample { name, le, value })
}

/// The label pairs up to the closing `}`, and what follows it.
fn labels(text: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(tail) = rest.strip_prefix('}') {
            return Some((pairs, tail));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        pairs.push((key, value));
        rest = after[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
}

fn number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_buckets_and_types_are_read() {
        let page = parse(
            "# HELP vllm:num_requests_running Running.\n\
             # TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{model_name=\"a \\\"b\\\", c\",engine=\"0\"} 3\n\
             vllm:ttft_seconds_bucket{le=\"0.5\",model_name=\"m\"} 7 1712345678000\n\
             vllm:ttft_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 9\n\
             up 1\n\
             not a sample\n\
             x{unterminated=\"1} 2\n",
        );
        assert_eq!(page.types["vllm:num_requests_running"], "gauge");
        assert_eq!(
            page.samples,
            vec![
                Sample {
                    name: "vllm:num_requests_running",
                    le: None,
                    value: 3.0
                },
                Sample {
                    name: "vllm:ttft_seconds_bucket",
                    le: Some(0.5),
                    value: 7.0
                },
                Sample {
                    name: "vllm:ttft_seconds_bucket",
                    le: Some(f64::INFINITY),
                    value: 9.0
                },
                Sample {
                    name: "up",
                    le: None,
                    value: 1.0
                },
            ]
        );
        assert_eq!(page.malformed, 2);
    }
}
