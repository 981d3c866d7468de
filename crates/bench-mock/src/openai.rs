//! The OpenAI wire format: parsing requests, rendering responses and stream chunks as vLLM
//! and OpenAI send them.

use serde_json::Value;

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Chat,
    Completions,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
        }
    }
}

/// The parts of a request the mock acts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) ignore_eos: bool,
    pub(crate) prompt: Prompt,
    /// A chat request's messages as digests (`None` for completions).
    pub(crate) messages: Option<Vec<crate::truth::MessageDigest>>,
}

/// The prompt as text, or as token ids (completions accepts both).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prompt {
    Text(String),
    TokenIds(u32),
}

/// A 400 with an OpenAI-style error body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadRequest {
    pub(crate) message: String,
    pub(crate) param: Option<&'static str>,
}

fn bad(message: impl Into<String>, param: &'static str) -> BadRequest {
    BadRequest {
        message: message.into(),
        param: Some(param),
    }
}

pub(crate) fn parse(api: Api, body: &[u8]) -> Result<Parsed, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| BadRequest {
        message: format!("request body is not valid JSON: {e}"),
        param: None,
    })?;
    let object = value.as_object().ok_or_else(|| BadRequest {
        message: "request body must be a JSON object".to_owned(),
        param: None,
    })?;
    let model = match object.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("`model` must be a string", "model")),
    };
    let flag = |key: &'static str| -> Result<bool, BadRequest> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("`{key}` must be a boolean"), key)),
        }
    };
    let stream = flag("stream")?;
    let ignore_eos = flag("ignore_eos")?;
    let include_usage = match object.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => match options.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(bad(
                    "`stream_options.include_usage` must be a boolean",
                    "stream_options",
                ))
            }
        },
        Some(_) => return Err(bad("`stream_options` must be an object", "stream_options")),
    };
    let limit_keys: &[&'static str] = match api {
        Api::Chat => &["max_completion_tokens", "max_tokens"],
        Api::Completions => &["max_tokens"],
    };
    let mut max_tokens = None;
    for &key in limit_keys {
        match object.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 && n <= u64::from(u32::MAX) => {
                    max_tokens = Some(n as u32);
                    break;
                }
                _ => return Err(bad(format!("`{key}` must be a positive integer"), key)),
            },
        }
    }
    let (prompt, messages) = match api {
        Api::Chat => {
            let (prompt, digests) = chat_prompt(object.get("messages"))?;
            (prompt, Some(digests))
        }
        Api::Completions => (completion_prompt(object.get("prompt"))?, None),
    };
    Ok(Parsed {
        model,
        stream,
        include_usage,
        max_tokens,
        ignore_eos,
        prompt,
        messages,
    })
}

/// The prompt text (every message's text, concatenated) and each message's digest.
fn chat_prompt(
    messages: Option<&Value>,
) -> Result<(Prompt, Vec<crate::truth::MessageDigest>), BadRequest> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` must be a list of messages", "messages"))?;
    if messages.is_empty() {
        return Err(bad("`messages` must not be empty", "messages"));
    }
    let mut text = String::new();
    let mut digests = Vec::with_capacity(messages.len());
    for message in messages {
        let content = message
            .get("content")
            .ok_or_else(|| bad("every message needs `content`", "messages"))?;
        let before = text.len();
        match content {
            Value::String(s) => text.push_str(s),
            Value::Array(parts) => {
                for part in parts {
                    if let Some(t) = part.get("text").and_then(Value::as_str) {
                        text.push_str(t);
                    }
                }
            }
            Value::Null => {}
            _ => {
                return Err(bad(
                    "message `content` must be a string or a list of parts",
                    "messages",
                ))
            }
        }
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        digests.push(crate::truth::MessageDigest::of(role, &text[before..]));
    }
    Ok((Prompt::Text(text), digests))
}

fn completion_prompt(prompt: Option<&Value>) -> Result<Prompt, BadRequest> {
    match prompt {
        Some(Value::String(s)) => Ok(Prompt::Text(s.clone())),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_u64) => {
            Ok(Prompt::TokenIds(items.len() as u32))
        }
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => Ok(Prompt::Text(
            items[0].as_str().unwrap_or_default().to_owned(),
        )),
        _ => Err(bad(
            "`prompt` must be a string, a list of one string, or a list of token ids",
            "prompt",
        )),
    }
}

/// The OpenAI error body: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error_body(message: &str, kind: &str, param: Option<&str>, code: u16) -> String {
    serde_json::json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    })
    .to_string()
}

/// What every chunk and response of one request shares.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) api: Api,
    /// `data: {"id":...,"object":...,"created":...,"model":...` for stream chunks.
    chunk_head: String,
    id: String,
    model: String,
    created: u64,
}

impl Envelope {
    pub(crate) fn new(api: Api, id: &str, model: &str, created: u64) -> Self {
        let object = match api {
            Api::Chat => "chat.completion.chunk",
            Api::Completions => "text_completion",
        };
        let model_json = Value::from(model).to_string();
        Self {
            api,
            chunk_head: format!(
                r#"data: {{"id":"{id}","object":"{object}","created":{created},"model":{model_json}"#
            ),
            id: id.to_owned(),
            model: model.to_owned(),
            created,
        }
    }

    /// The chat stream's opening chunk: the assistant role, no content yet.
    pub(crate) fn role_chunk(&self) -> String {
        format!(
            "{},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n",
            self.chunk_head
        )
    }

    /// One content chunk; `text` must need no JSON escaping; a `reasoning` token of a chat
    /// stream goes in `delta.reasoning_content`, as vLLM's reasoning parsers send it. Built by
    /// appending rather than `format!`, whose machinery cost more than anything else the
    /// mock does per token.
    pub(crate) fn token_chunk(
        &self,
        text: &str,
        reasoning: bool,
        finish_reason: Option<&str>,
    ) -> String {
        let (open, close) = match self.api {
            Api::Chat if reasoning => (
                ",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"",
                "\"},\"logprobs\":null,\"finish_reason\":",
            ),
            Api::Chat => (
                ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
                "\"},\"logprobs\":null,\"finish_reason\":",
            ),
            Api::Completions => (
                ",\"choices\":[{\"index\":0,\"text\":\"",
                "\",\"logprobs\":null,\"finish_reason\":",
            ),
        };
        let mut chunk = String::with_capacity(
            self.chunk_head.len() + open.len() + text.len() + close.len() + 24,
        );
        chunk.push_str(&self.chunk_head);
        chunk.push_str(open);
        chunk.push_str(text);
        chunk.push_str(close);
        match finish_reason {
            Some(reason) => {
                chunk.push('"');
                chunk.push_str(reason);
                chunk.push('"');
            }
            None => chunk.push_str("null"),
        }
        chunk.push_str("}]}\n\n");
        chunk
    }

    /// The final usage chunk (`stream_options.include_usage`): no choices.
    pub(crate) fn usage_chunk(&self, prompt_tokens: u32, completion_tokens: u32) -> String {
        format!(
            "{},\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{},\"completion_tokens\":{completion_tokens}}}}}\n\n",
            self.chunk_head,
            prompt_tokens + completion_tokens
        )
    }

    /// The non-streaming response body; a chat message carries `reasoning` (when there is
    /// any) in `reasoning_content`, as vLLM's does.
    pub(crate) fn full_response(
        &self,
        reasoning: &str,
        text: &str,
        finish_reason: &str,
        prompt_tokens: u32,
        completion_tokens: u32,
    ) -> String {
        let usage = serde_json::json!({
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        });
        let mut message = serde_json::json!({ "role": "assistant", "content": text });
        if !reasoning.is_empty() {
            message["reasoning_content"] = reasoning.into();
        }
        let choice = match self.api {
            Api::Chat => serde_json::json!({
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason,
            }),
            Api::Completions => serde_json::json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason,
            }),
        };
        serde_json::json!({
            "id": self.id,
            "object": match self.api { Api::Chat => "chat.completion", Api::Completions => "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage,
        })
        .to_string()
    }
}

/// An error object inside a stream, as vLLM sends one.
pub(crate) fn stream_error_chunk(message: &str) -> String {
    format!(
        "data: {}\n\n",
        error_body(message, "server_error", None, 500)
    )
}

/// The stream terminator.
pub(crate) const DONE: &str = "data: [DONE]\n\n";

/// A chunk that is not valid JSON.
pub(crate) const MALFORMED: &str =
    "data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\":\n\n";

/// The words generated tokens are made of: one word, with its leading space, per token.
const WORDS: [&str; 16] = [
    " the",
    " quick",
    " model",
    " streams",
    " one",
    " token",
    " at",
    " a",
    " time",
    " while",
    " the",
    " benchmark",
    " measures",
    " every",
    " gap",
    " precisely",
];

/// The text of generated token `k` (0-based).
pub(crate) fn token_text(k: u32) -> &'static str {
    WORDS[k as usize % WORDS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_completion_requests_parse() {
        let chat =
            br#"{"model":"m","messages":[{"role":"user","content":"hi there"}],"stream":true,
            "stream_options":{"include_usage":true},"max_completion_tokens":8,"ignore_eos":true}"#;
        let p = parse(Api::Chat, chat).unwrap();
        assert_eq!(p.model.as_deref(), Some("m"));
        assert!(p.stream && p.include_usage && p.ignore_eos);
        assert_eq!(p.max_tokens, Some(8));
        assert_eq!(p.prompt, Prompt::Text("hi there".to_owned()));
        let p = parse(
            Api::Completions,
            br#"{"model":"m","prompt":[1,2,3],"max_tokens":4}"#,
        )
        .unwrap();
        assert_eq!(
            (p.prompt, p.max_tokens, p.stream),
            (Prompt::TokenIds(3), Some(4), false)
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_the_parameter() {
        let e = parse(Api::Chat, b"{").unwrap_err();
        assert!(e.message.starts_with("request body is not valid JSON"));
        let e = parse(Api::Chat, br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(e.param, Some("messages"));
        let e = parse(Api::Completions, br#"{"prompt":"x","max_tokens":0}"#).unwrap_err();
        assert_eq!(e.message, "`max_tokens` must be a positive integer");
        let e = parse(Api::Completions, br#"{"prompt":5}"#).unwrap_err();
        assert_eq!(e.param, Some("prompt"));
    }

    #[test]
    fn token_chunks_keep_their_bytes() {
        let chat = Envelope::new(Api::Chat, "chatcmpl-1", "m", 7);
        let head =
            r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m""#;
        assert_eq!(
            chat.token_chunk(" hi", false, None),
            format!("{head},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" hi\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n")
        );
        let completions = Envelope::new(Api::Completions, "cmpl-1", "m", 7);
        let head = r#"data: {"id":"cmpl-1","object":"text_completion","created":7,"model":"m""#;
        assert_eq!(
            completions.token_chunk(" x", false, Some("length")),
            format!("{head},\"choices\":[{{\"index\":0,\"text\":\" x\",\"logprobs\":null,\"finish_reason\":\"length\"}}]}}\n\n")
        );
    }

    #[test]
    fn chunks_are_valid_json_events() {
        let env = Envelope::new(Api::Chat, "chatcmpl-1", "m\"odel", 1700000000);
        for chunk in [
            env.role_chunk(),
            env.token_chunk(" hi", false, None),
            env.token_chunk(" think", true, None),
            env.token_chunk(" x", false, Some("length")),
            env.usage_chunk(5, 2),
        ] {
            let json = chunk
                .strip_prefix("data: ")
                .unwrap()
                .strip_suffix("\n\n")
                .unwrap();
            let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
            assert_eq!(v["model"], "m\"odel");
            assert_eq!(v["object"], "chat.completion.chunk");
        }
        let reasoning: Value = serde_json::from_str(
            env.token_chunk(" think", true, None)
                .trim_start_matches("data: ")
                .trim(),
        )
        .unwrap();
        assert_eq!(
            reasoning["choices"][0]["delta"]["reasoning_content"],
            " think"
        );
        assert!(reasoning["choices"][0]["delta"].get("content").is_none());
        let usage: Value =
            serde_json::from_str(env.usage_chunk(5, 2).trim_start_matches("data: ").trim())
                .unwrap();
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 7);
        let env = Envelope::new(Api::Completions, "cmpl-1", "m", 1);
        let v: Value = serde_json::from_str(
            env.token_chunk(" a", false, Some("stop"))
                .trim_start_matches("data: ")
                .trim(),
        )
        .unwrap();
        assert_eq!(
            (
                v["choices"][0]["text"].as_str(),
                v["choices"][0]["finish_reason"].as_str()
            ),
            (Some(" a"), Some("stop"))
        );
    }
}
