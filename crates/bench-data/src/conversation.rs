//! The human turns of a conversation row (ShareGPT `conversations` with `from`/`value`, or chat
//! `messages` with `role`/`content`), for multi-turn sessions: the user messages a session
//! sends, one per turn. The row's own assistant turns are not used; a session sends the
//! answers the server actually gave.

use serde_json::Value;

/// The text of every human (`human`, `user`) turn with text, in order.
pub(crate) fn human_turns(turns: Option<&Value>) -> Vec<String> {
    let Some(turns) = turns.and_then(Value::as_array) else {
        return Vec::new();
    };
    turns
        .iter()
        .filter_map(|turn| {
            let speaker = turn.get("from").or_else(|| turn.get("role"))?.as_str()?;
            if !matches!(speaker, "human" | "user") {
                return None;
            }
            let text = turn
                .get("value")
                .or_else(|| turn.get("content"))?
                .as_str()?;
            (!text.trim().is_empty()).then(|| text.to_owned())
        })
        .collect()
}

/// The human turns after the first one ([`crate::Row::prompt`] holds the first).
pub(crate) fn later_human_turns(turns: Option<&Value>) -> Vec<String> {
    human_turns(turns).into_iter().skip(1).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_human_turn_in_order_skipping_others_and_empty_ones() {
        let sharegpt = json!([
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "name a river"},
            {"from": "gpt", "value": "the Rhine"},
            {"from": "human", "value": "  "},
            {"from": "human", "value": "and a longer one?"}
        ]);
        assert_eq!(
            human_turns(Some(&sharegpt)),
            ["name a river", "and a longer one?"]
        );
        assert_eq!(later_human_turns(Some(&sharegpt)), ["and a longer one?"]);
        let chat = json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]);
        assert_eq!(human_turns(Some(&chat)), ["hi", "bye"]);
        assert!(human_turns(Some(&json!("not a list"))).is_empty());
        assert!(human_turns(None).is_empty());
    }
}
