//! `--set key=value` overrides on the config tree, with the config's own dotted key names.
//!
//! The value is read as a TOML value (`5`, `2.5`, `true`, `"text"`, `[5, 10]`,
//! `{ seconds = 5 }`); anything that is not valid TOML is taken as a plain string, so
//! `--set target.model=llama-3` needs no quotes. `output[0].path` or `output.0.path` index
//! lists. `profile.rate` is the one shorthand (`--rate`, see `rate`).

use serde_json::{Map, Value};

use super::rate;
use crate::error::ConfigError;

pub(super) fn apply(tree: &mut Value, given: &str) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError::Override {
        given: given.to_owned(),
        message,
    };
    let (key, raw) = given
        .split_once('=')
        .ok_or_else(|| fail("expected key=value, e.g. profile.rates=[5,10]".to_owned()))?;
    let key = key.trim();
    if key == rate::KEY {
        let kind = tree
            .get("profile")
            .and_then(|p| p.get("kind"))
            .and_then(Value::as_str);
        let (key, value) = rate::expand(kind, raw)?;
        return set(tree, &[Part::Key("profile"), Part::Key(key)], value).map_err(fail);
    }
    let parts = split_key(key).ok_or_else(|| {
        fail(format!(
            "`{key}` is not a dotted key such as `target.model`"
        ))
    })?;
    let value = parse_value(raw.trim());
    set(tree, &parts, value).map_err(fail)
}

enum Part<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_key(key: &str) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    for segment in key.split('.') {
        let (name, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            match name.parse::<usize>() {
                Ok(index) if !parts.is_empty() => parts.push(Part::Index(index)),
                _ => parts.push(Part::Key(name)),
            }
        } else if rest.is_empty() || parts.is_empty() {
            return None;
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            parts.push(Part::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!parts.is_empty()).then_some(parts)
}

fn parse_value(raw: &str) -> Value {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        v: Value,
    }
    toml::from_str::<Wrapper>(&format!("v = {raw}"))
        .map(|w| w.v)
        .unwrap_or_else(|_| Value::String(raw.to_owned()))
}

fn set(node: &mut Value, parts: &[Part<'_>], value: Value) -> Result<(), String> {
    let Some((first, rest)) = parts.split_first() else {
        *node = value;
        return Ok(());
    };
    match first {
        Part::Key(key) => {
            if node.is_null() {
                *node = Value::Object(Map::new());
            }
            let map = node
                .as_object_mut()
                .ok_or_else(|| format!("cannot set `{key}` inside a value that is not a table"))?;
            let child = map.entry(key.to_string()).or_insert(Value::Null);
            set(child, rest, value)
        }
        Part::Index(index) => {
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            let list = node
                .as_array_mut()
                .ok_or_else(|| format!("cannot index [{index}] into a value that is not a list"))?;
            if *index > list.len() {
                return Err(format!(
                    "index {index} is past the end of a list of {} (use index {} to append)",
                    list.len(),
                    list.len()
                ));
            }
            if *index == list.len() {
                list.push(Value::Null);
            }
            set(&mut list[*index], rest, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(start: Value, given: &str) -> Value {
        let mut tree = start;
        apply(&mut tree, given).unwrap();
        tree
    }

    #[test]
    fn values_are_read_as_toml_or_else_as_strings() {
        let tree = applied(json!({}), "profile.rates=[5, 10.5]");
        assert_eq!(tree, json!({"profile": {"rates": [5, 10.5]}}));
        let tree = applied(tree, "target.model=llama-3.1-8b");
        assert_eq!(tree["target"]["model"], json!("llama-3.1-8b"));
        let tree = applied(tree, "warmup={ seconds = 5 }");
        assert_eq!(tree["warmup"], json!({"seconds": 5}));
        let tree = applied(tree, "target.url=\"http://x:1\"");
        assert_eq!(tree["target"]["url"], json!("http://x:1"));
    }

    #[test]
    fn the_rate_shorthand_lands_on_the_key_of_the_kind_set_so_far() {
        let tree = applied(
            json!({"profile": {"kind": "concurrent"}}),
            "profile.rate=1,4",
        );
        assert_eq!(
            tree,
            json!({"profile": {"kind": "concurrent", "streams": [1, 4]}})
        );
        let tree = applied(tree, "profile.kind=constant");
        let tree = applied(tree, "profile.rate=2.5");
        assert_eq!(tree["profile"]["rates"], json!([2.5]));
    }

    #[test]
    fn lists_are_indexed_both_ways() {
        let tree = applied(
            json!({"output": [{"path": "a.json"}]}),
            "output[0].path=b.json",
        );
        assert_eq!(tree, json!({"output": [{"path": "b.json"}]}));
        let tree = applied(tree, "output.1.path=c.csv");
        assert_eq!(tree["output"][1], json!({"path": "c.csv"}));
    }

    #[test]
    fn bad_overrides_are_explained() {
        let mut tree = json!({"seed": 1, "output": []});
        let message = |given: &str, tree: &mut Value| apply(tree, given).unwrap_err().to_string();
        assert_eq!(
            message("seed", &mut tree),
            "invalid override `seed`: expected key=value, e.g. profile.rates=[5,10]"
        );
        assert_eq!(
            message("seed.x=1", &mut tree),
            "invalid override `seed.x=1`: cannot set `x` inside a value that is not a table"
        );
        assert_eq!(
            message("output[3].path=a", &mut tree),
            "invalid override `output[3].path=a`: index 3 is past the end of a list of 0 (use index 0 to append)"
        );
        assert_eq!(
            message("a..b=1", &mut tree),
            "invalid override `a..b=1`: `a..b` is not a dotted key such as `target.model`"
        );
    }
}
