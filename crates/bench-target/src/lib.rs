//! bench-target: the server under test as engines see it before their first request.
//!
//! The HTTP client settings that `[target]` asks for (headers, the API key, timeouts), the
//! routes, and [`check`]: the preflight that refuses to benchmark something that is not an
//! OpenAI-compatible server, saying what came back instead. Engines share it so that every
//! engine refuses the same targets with the same words.

mod tls;

use std::net::ToSocketAddrs as _;
use std::time::Duration;

use bench_core::config::limits::duration_from_secs;
use bench_core::config::{Api, Target};
use bytes::Bytes;

/// Marks llm-bench's own probe requests, so a server that wants to (the mock) can leave them
/// out of its counts.
pub const PROBE_HEADER: &str = "x-llm-bench-probe";

/// The longest the check waits for either answer: the server is idle and asked for one token.
const CHECK_LIMIT: Duration = Duration::from_secs(30);

/// How much of an unexpected answer an error quotes.
const QUOTED_BYTES: usize = 200;

/// The most of the probe's answer that is read to find its first event.
const READ_LIMIT: usize = 64 << 10;

/// Why the target cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// A `[target]` setting cannot become a request (a header value, the API key).
    #[error("invalid `{key}`: {message}")]
    Setting {
        /// The config key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Nothing answered at the address.
    #[error("cannot reach `{url}` ({cause}); check that the server is running and listening there, or leave out target.url to use the embedded mock")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The innermost cause (`Connection refused`, a timeout).
        cause: String,
    },
    /// The TLS handshake failed: the message says why (an expired or untrusted certificate, a
    /// name mismatch, a refused client certificate) and what to set.
    #[error("cannot make a TLS connection to `{url}`: {problem}")]
    Tls {
        /// The base URL.
        url: String,
        /// What failed and what to do.
        problem: String,
    },
    /// `target.model` is not given and the server's model list does not name exactly one.
    #[error("missing key `target.model`; {why}")]
    ModelNeeded {
        /// What the server listed and what to pass.
        why: String,
    },
    /// Something answered, but not as an OpenAI-compatible server serving the model.
    #[error("the target at `{url}` cannot be benchmarked: {what}")]
    Refused {
        /// The base URL.
        url: String,
        /// The request, what came back (status, content type, first bytes) and what to check.
        what: String,
    },
}

impl From<TargetError> for bench_core::EngineError {
    /// A bad setting is the config's fault; the rest is the target's.
    fn from(error: TargetError) -> Self {
        match error {
            TargetError::Setting { key, message } => {
                bench_core::ConfigError::InvalidValue { key, message }.into()
            }
            TargetError::ModelNeeded { why } => bench_core::ConfigError::MissingKey {
                key: "target.model".to_owned(),
                hint: Some(why),
            }
            .into(),
            other => bench_core::EngineError::Target {
                message: other.to_string(),
            },
        }
    }
}

/// What a successful check found that the report should say.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Checked {
    /// Served models listed by `GET /v1/models` (empty when the route is missing).
    pub models: Vec<String>,
    /// What the report should warn about.
    pub warnings: Vec<bench_core::schema::Warning>,
}

/// The headers every request to the target carries: `Authorization` with the API key from
/// `target.api_key_env` (when that variable is set) and `target.headers`, all marked sensitive.
pub fn request_headers(target: &Target) -> Result<reqwest::header::HeaderMap, TargetError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if !target.api_key_env.is_empty() {
        if let Ok(key) = std::env::var(&target.api_key_env) {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| TargetError::Setting {
                    key: "target.api_key_env".to_owned(),
                    message: format!(
                        "the API key in ${} is not a valid header value",
                        target.api_key_env
                    ),
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
    }
    for (name, value) in &target.headers {
        let setting = |message: String| TargetError::Setting {
            key: format!("target.headers.{name}"),
            message,
        };
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| setting(e.to_string()))?;
        let mut value =
            reqwest::header::HeaderValue::from_str(value).map_err(|e| setting(e.to_string()))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    Ok(headers)
}

/// The HTTP client's settings: headers (the key marked sensitive), timeouts, TLS
/// (`[target.tls]`), HTTP/2 by ALPN unless `target.http2 = false`, and the environment's proxy
/// unless `target.proxy_from_env = false`.
pub fn client_builder(target: &Target) -> Result<reqwest::ClientBuilder, TargetError> {
    let headers = request_headers(target)?;
    let timeouts = &target.timeouts;
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(duration_from_secs(timeouts.connect_seconds))
        .read_timeout(duration_from_secs(timeouts.read_seconds))
        .tcp_nodelay(true)
        .tls_backend_preconfigured(tls::client_config(
            &target.tls,
            target.http2,
            base(target).starts_with("https://"),
        )?);
    if !target.http2 {
        builder = builder.http1_only();
    }
    if !target.proxy_from_env {
        builder = builder.no_proxy();
    }
    if let Some(name) = &target.tls.server_name {
        // Requests go to the server name (its certificate, SNI and Host), at the address of
        // the URL's host.
        let (host, port) = host_and_port(target);
        let addresses: Vec<std::net::SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| TargetError::Unreachable {
                url: base(target).to_owned(),
                cause: format!("cannot resolve `{host}`: {e}"),
            })?
            .collect();
        builder = builder.resolve_to_addrs(name, &addresses);
    }
    Ok(builder)
}

/// The host and port of `target.url` (the port defaults to the scheme's).
fn host_and_port(target: &Target) -> (String, u16) {
    host_and_port_of(target.url.as_deref().unwrap_or_default())
}

/// The host and port of a URL (the port defaults to the scheme's).
fn host_and_port_of(url: &str) -> (String, u16) {
    let url = url.trim();
    let (https, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://").unwrap_or(url)),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if https { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host.to_owned(), port.unwrap_or(default_port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            (host.to_owned(), port.parse().unwrap_or(default_port))
        }
        _ => (authority.to_owned(), default_port),
    }
}

/// The proxy the environment names for the target (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
/// `NO_PROXY`, as the client reads them), without credentials, unless
/// `target.proxy_from_env = false`.
pub fn proxy_for(target: &Target) -> Option<String> {
    if !target.proxy_from_env {
        return None;
    }
    let uri: http::Uri = completion_url(target).parse().ok()?;
    let intercept = hyper_util::client::proxy::matcher::Matcher::from_env().intercept(&uri)?;
    let proxy = intercept.uri();
    let authority = proxy.authority()?.as_str();
    let without_credentials = authority.rsplit('@').next().unwrap_or(authority);
    Some(format!(
        "{}://{without_credentials}",
        proxy.scheme_str().unwrap_or("http")
    ))
}

/// A client with no `[target]` settings (no key, plain HTTP: it trusts no certificate), for
/// tools and tests. Clients must come from this crate: reqwest is built without a
/// process-wide crypto provider, so its own `Client::new()` panics.
pub fn plain_client() -> Result<reqwest::Client, TargetError> {
    client(&Target {
        api_key_env: String::new(),
        ..Target::default()
    })
}

/// A client with [`client_builder`]'s settings, for checks.
pub fn client(target: &Target) -> Result<reqwest::Client, TargetError> {
    client_builder(target)?
        .build()
        .map_err(|e| TargetError::Setting {
            key: "target".to_owned(),
            message: format!("cannot build an HTTP client from these settings: {e}"),
        })
}

/// The target's base URL as written, without a trailing slash (empty when it has none).
fn base(target: &Target) -> &str {
    target
        .url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/')
}

/// The base URL requests go to: [`base`], with `target.tls.server_name` in place of the host
/// when it is set ([`client_builder`] resolves that name to the host's address).
fn request_base(target: &Target) -> String {
    let base = base(target);
    let Some(name) = &target.tls.server_name else {
        return base.to_owned();
    };
    let (host, _) = host_and_port(target);
    let Some(scheme_end) = base.find("://").map(|i| i + 3) else {
        return base.to_owned();
    };
    let (scheme, rest) = base.split_at(scheme_end);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    match rest.find(&host) {
        Some(at) => format!("{scheme}{}{name}{}", &rest[..at], &rest[at + host.len()..]),
        None => base.to_owned(),
    }
}

/// The completion route of the target (`target.api`).
pub fn completion_url(target: &Target) -> String {
    let base = request_base(target);
    let path = match target.api {
        Api::Chat => "chat/completions",
        Api::Completions => "completions",
    };
    if base.ends_with("/v1") {
        format!("{base}/{path}")
    } else {
        format!("{base}/v1/{path}")
    }
}

/// The models route next to a completion route.
pub fn models_url(completion_url: &str) -> String {
    completion_url
        .rsplit_once("/v1/")
        .map_or(completion_url.to_owned(), |(b, _)| format!("{b}/v1/models"))
}

/// A one-token request for the target's API, streamed or not.
pub fn probe_body(target: &Target, stream: bool) -> Bytes {
    let mut body = serde_json::json!({
        "model": target.model(),
        "max_tokens": 1,
        "stream": stream,
    });
    match target.api {
        Api::Chat => {
            body["messages"] = serde_json::json!([{"role": "user", "content": "Hello"}]);
        }
        Api::Completions => body["prompt"] = serde_json::json!("Hello"),
    }
    Bytes::from(body.to_string())
}

/// Checks that the target answers as an OpenAI-compatible server: `GET /v1/models` (when the
/// server has the route) lists the model or the server accepts it anyway, and one request
/// (`body`, sent with [`PROBE_HEADER`]) gets a 2xx answer in the OpenAI shape (a stream of
/// `data:` events with `choices` when `body` asks to stream, a JSON object with `choices`
/// otherwise).
pub async fn check(
    client: &reqwest::Client,
    target: &Target,
    body: Bytes,
) -> Result<Checked, TargetError> {
    let url = base(target).to_owned();
    match tokio::time::timeout(CHECK_LIMIT, check_within(client, target, body, &url)).await {
        Ok(Ok(mut checked)) => {
            if target.tls.insecure_skip_verify {
                let message = format!("target.tls.insecure_skip_verify = true: the certificate of `{url}` was not verified, so nothing proves the figures came from that server; use it with a test server only, and give target.tls.ca_file otherwise");
                tracing::warn!("{message}");
                checked.warnings.push(bench_core::schema::Warning {
                    code: "tls_unverified".to_owned(),
                    message,
                });
            }
            Ok(checked)
        }
        Ok(Err(error)) => Err(diagnosed(error, target).await),
        Err(_) => Err(TargetError::Refused {
            url,
            what: format!(
                "it did not answer a one-token request within {} s; check that it has finished loading the model",
                CHECK_LIMIT.as_secs()
            ),
        }),
    }
}

async fn check_within(
    client: &reqwest::Client,
    target: &Target,
    body: Bytes,
    url: &str,
) -> Result<Checked, TargetError> {
    let completions = completion_url(target);
    let models_url = models_url(&completions);
    let model = target.model();
    let refused = |what: String| TargetError::Refused {
        url: url.to_owned(),
        what,
    };
    let mut checked = Checked::default();
    if let Some(models) = list_models(client, target, &models_url, url).await? {
        checked.models = models;
    }
    let stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|b| b.get("stream").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    let mut answer = client
        .post(&completions)
        .header(PROBE_HEADER, "preflight")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| transport(&e, url))?;
    let status = answer.status();
    let content_type = content_type_of(&answer);
    let mut bytes = Vec::new();
    while bytes.len() < READ_LIMIT {
        match answer.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) if bytes.is_empty() => return Err(transport(&e, url)),
            Err(_) => break,
        }
        if stream && status.is_success() && first_event(&bytes).is_some() {
            break;
        }
    }
    let path = completions.strip_prefix(url).unwrap_or(&completions);
    let listed = checked.models.is_empty() || checked.models.iter().any(|m| m == model);
    if !status.is_success() {
        let hint = if !listed {
            format!(
                "; the server lists {} but not `{model}`: set target.model to the served name",
                checked.models.join(", ")
            )
        } else if matches!(status.as_u16(), 404 | 405 | 501) {
            "; check target.url (the base URL, without /v1/...) and target.api".to_owned()
        } else {
            String::new()
        };
        return Err(refused(format!(
            "POST {path} answered HTTP {status} ({content_type}): `{}`{hint}",
            quote(&bytes)
        )));
    }
    let shaped = if stream {
        first_event(&bytes).is_some_and(|data| has_choices(data.as_bytes()))
    } else {
        has_choices(&bytes)
    };
    if !shaped {
        let expected = if stream {
            "an OpenAI stream (`data:` events with `choices`)"
        } else {
            "an OpenAI completion (a JSON object with `choices`)"
        };
        return Err(refused(format!(
            "POST {path} answered HTTP {status} ({content_type}) but not {expected}: `{}`; check target.url and target.api",
            quote(&bytes)
        )));
    }
    if !listed {
        checked.warnings.push(bench_core::schema::Warning {
            code: "model_not_listed".to_owned(),
            message: format!(
                "GET /v1/models lists {} but not `{model}`; the server answered requests for it anyway",
                checked.models.join(", ")
            ),
        });
    }
    Ok(checked)
}

/// The model ids `GET /v1/models` lists, or None when the server has no such route (it may
/// still serve completions).
async fn list_models(
    client: &reqwest::Client,
    target: &Target,
    models_url: &str,
    url: &str,
) -> Result<Option<Vec<String>>, TargetError> {
    let refused = |what: String| TargetError::Refused {
        url: url.to_owned(),
        what,
    };
    let answer = client
        .get(models_url)
        .send()
        .await
        .map_err(|e| transport(&e, url))?;
    let status = answer.status();
    let content_type = content_type_of(&answer);
    let bytes = answer.bytes().await.map_err(|e| transport(&e, url))?;
    match status.as_u16() {
        200..=299 => match served_models(&bytes) {
            Some(models) => Ok(Some(models)),
            None => Err(refused(format!(
                "GET /v1/models answered HTTP {status} ({content_type}) but not an OpenAI model list: `{}`; check target.url",
                quote(&bytes)
            ))),
        },
        // Servers without the route still serve completions; the probe decides.
        404 | 405 | 501 => Ok(None),
        401 | 403 => Err(refused(format!(
            "GET /v1/models answered HTTP {status}: the server wants credentials; set target.api_key_env to the variable holding the API key (now `{}`)",
            target.api_key_env
        ))),
        _ => Err(refused(format!(
            "GET /v1/models answered HTTP {status} ({content_type}): `{}`",
            quote(&bytes)
        ))),
    }
}

/// The model to benchmark when `target.model` is not given: the one model the server's
/// `GET /v1/models` lists (as GuideLLM and vLLM's client choose). Several, none, or no such
/// route are [`TargetError::ModelNeeded`], which says what to pass.
pub async fn discover_model(target: &Target) -> Result<String, TargetError> {
    let client = client(target)?;
    let url = base(target).to_owned();
    let models_url = models_url(&completion_url(target));
    let listed = tokio::time::timeout(CHECK_LIMIT, list_models(&client, target, &models_url, &url))
        .await
        .map_err(|_| TargetError::Refused {
            url: url.clone(),
            what: format!(
                "GET /v1/models did not answer within {} s",
                CHECK_LIMIT.as_secs()
            ),
        })?;
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => return Err(diagnosed(error, target).await),
    };
    choose_model(&url, listed)
}

/// The one model of a model list, or what to pass instead.
fn choose_model(url: &str, listed: Option<Vec<String>>) -> Result<String, TargetError> {
    let why = |what: String| TargetError::ModelNeeded {
        why: format!("{what}; pass --model NAME or set target.model to the served model's name"),
    };
    match listed {
        None => Err(why(format!(
            "the server at `{url}` has no GET /v1/models to name its model"
        ))),
        Some(mut models) => match models.len() {
            1 => Ok(models.remove(0)),
            0 => Err(why(format!(
                "GET /v1/models at `{url}` lists no model (is one loaded?)"
            ))),
            n => Err(why(format!(
                "GET /v1/models at `{url}` lists {n} models, so which one to benchmark must be said: {}",
                models.join(", ")
            ))),
        },
    }
}

/// For an https target, a failure the HTTP client saw only as a closed or refused connection
/// is examined with a TLS connection of its own, which names the handshake's problem.
async fn diagnosed(error: TargetError, target: &Target) -> TargetError {
    let https = base(target).starts_with("https://");
    if !https
        || !matches!(
            error,
            TargetError::Refused { .. } | TargetError::Unreachable { .. }
        )
    {
        return error;
    }
    let (host, port) = host_and_port(target);
    match tls::diagnose(target, &host, port).await {
        Some(problem) => TargetError::Tls {
            url: base(target).to_owned(),
            problem,
        },
        None => error,
    }
}

/// A transport failure: unreachable when nothing answered, else refused with the cause.
fn transport(error: &reqwest::Error, url: &str) -> TargetError {
    if let Some(failure) = tls::tls_failure(error) {
        let host = host_and_port_of(url).0;
        return TargetError::Tls {
            url: url.to_owned(),
            problem: tls::explain(failure, &host),
        };
    }
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if error.is_connect() || error.is_timeout() {
        TargetError::Unreachable {
            url: url.to_owned(),
            cause,
        }
    } else {
        TargetError::Refused {
            url: url.to_owned(),
            what: format!("the connection failed during the check ({cause})"),
        }
    }
}

fn content_type_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "no content type".to_owned(), str::to_owned)
}

/// The model ids of an OpenAI model list (`{"data": [{"id": ...}]}`).
fn served_models(bytes: &[u8]) -> Option<Vec<String>> {
    let list: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let data = list.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(serde_json::Value::as_str))
            .map(str::to_owned)
            .collect(),
    )
}

/// The data of the first complete SSE event that carries any: events of comments only
/// (`: ping`, a gateway's keep-alive) come first on some servers.
fn first_event(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let mut events: Vec<&str> = text.split("\n\n").collect();
    // The last piece is not yet ended by a blank line.
    events.pop();
    events.into_iter().find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        (!data.is_empty()).then(|| data.join("\n"))
    })
}

fn without_tags(html: &str) -> String {
    // The body says what happened; the head repeats its title.
    let html = html
        .to_ascii_lowercase()
        .find("<body")
        .map_or(html, |at| &html[at..]);
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// Whether `bytes` are a JSON object with a `choices` array.
fn has_choices(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("choices").map(serde_json::Value::is_array))
        .unwrap_or(false)
}

/// The start of an answer, on one line; an HTML page's text without its tags.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = if text.trim_start().starts_with('<') {
        without_tags(&text)
    } else {
        text.into_owned()
    };
    // On one line first, so indentation does not eat the quote.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = text.len().min(QUOTED_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut line = text[..end].to_owned();
    if text.len() > QUOTED_BYTES {
        line.push_str(" ...");
    }
    if line.is_empty() {
        "(empty body)".to_owned()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listed_model_is_chosen_and_anything_else_says_what_to_pass() {
        let names = |n: &[&str]| Some(n.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(choose_model("http://h", names(&["m"])).unwrap(), "m");
        let message = |listed| {
            bench_core::EngineError::from(choose_model("http://h", listed).unwrap_err()).to_string()
        };
        assert_eq!(
            message(names(&["a", "b"])),
            "missing key `target.model`; GET /v1/models at `http://h` lists 2 models, so which one to benchmark must be said: a, b; pass --model NAME or set target.model to the served model's name"
        );
        assert!(message(names(&[])).contains("lists no model"));
        assert!(message(None).contains("has no GET /v1/models"));
    }

    #[test]
    fn the_first_event_is_found_across_line_ends() {
        assert_eq!(
            first_event(b": comment\r\ndata: {\"choices\":[]}\r\n\r\ndata: [DONE]\r\n\r\n")
                .as_deref(),
            Some("{\"choices\":[]}")
        );
        assert_eq!(first_event(b"data: {\"choices\""), None, "incomplete");
        assert_eq!(
            first_event(b": ping\n\n: OPENROUTER PROCESSING\n\ndata: {\"choices\":[]}\n\n")
                .as_deref(),
            Some("{\"choices\":[]}"),
            "keep-alive events before the first data"
        );
        assert_eq!(first_event(b"<html>\n\n</html>"), None);
        assert!(has_choices(br#"{"choices":[{"text":"x"}]}"#));
        assert!(!has_choices(br#"{"error":"no"}"#));
    }

    #[test]
    fn quotes_are_short_and_on_one_line() {
        assert_eq!(quote(b"<html>\n  <body>x</body>\n"), "x");
        assert_eq!(
            quote(b"<html><head><title>Error</title></head><body><h1>Error</h1></body></html>"),
            "Error"
        );
        assert_eq!(quote(b"{\"error\":\n \"no\"}"), r#"{"error": "no"}"#);
        assert_eq!(quote(b""), "(empty body)");
        let long = vec![b'a'; 500];
        assert!(quote(&long).ends_with(" ..."));
        assert_eq!(
            models_url("http://h:1/v1/chat/completions"),
            "http://h:1/v1/models"
        );
        assert_eq!(
            served_models(br#"{"data":[{"id":"a"},{"id":"b"}]}"#),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
    }

    /// A server that answers every request with `response`, for `requests` connections.
    async fn serve(response: &'static str, requests: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            for _ in 0..requests {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{address}")
    }

    fn target(url: &str) -> Target {
        Target {
            url: Some(url.to_owned()),
            model: Some("m".to_owned()),
            ..Target::default()
        }
    }

    #[tokio::test]
    async fn an_http_server_that_is_not_openai_is_refused_with_what_it_said() {
        let url = serve(
            "HTTP/1.1 501 Unsupported method ('POST')\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html><body>Error code: 501</body></html>",
            2,
        )
        .await;
        let target = target(&url);
        let client = client(&target).unwrap_or_else(|e| panic!("{e}"));
        let error = check(&client, &target, probe_body(&target, true))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("HTTP 501"), "{error}");
        assert!(error.contains("text/html"), "{error}");
        assert!(error.contains("Error code: 501"), "{error}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        drop(listener);
        let target = target(&url);
        let client = plain_client().unwrap_or_else(|e| panic!("{e}"));
        let error = check(&client, &target, probe_body(&target, true)).await;
        assert!(
            matches!(error, Err(TargetError::Unreachable { .. })),
            "{error:?}"
        );
    }
}
