//! [`Config::validate`]: what the types cannot express. Ranges (against [`super::limits`]),
//! cross-field rules, and, for the sections with a `kind`, that each key set is one the kind
//! reads and each key it needs is set (the tables beside the structs in `model`).

use serde::Serialize;

use super::limits::{
    at_most, seconds, shown, MAX_BURSTINESS, MAX_ERROR_RATE_WINDOW, MAX_RATE_PER_S, MAX_REQUESTS,
    MAX_SAMPLES, MAX_SECONDS, MAX_SPEEDUP, MAX_STEPS, MAX_STREAMS, MAX_TOKENS, MIN_BURSTINESS,
    MIN_RATE_PER_S, MIN_SPEEDUP,
};
use super::model::{
    Config, Constraints, Data, DataKind, KeyRule, Profile, ProfileKind, RateStrategy, Target,
    TargetKind, Transient, DATA_KEYS, PROFILE_KEYS,
};
use super::Scenario;
use crate::error::ConfigError;

impl Config {
    /// Checks ranges and cross-field rules that the types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.benchmark_engine.trim().is_empty() {
            return Err(invalid(
                "benchmark_engine",
                "must name an engine, e.g. `native`",
            ));
        }
        self.target.validate()?;
        self.profile.validate()?;
        // A replay ends when the trace's last row is answered; every other profile needs a limit.
        self.constraints
            .validate(self.profile.kind == ProfileKind::Replay)?;
        for (key, transient) in [("warmup", &self.warmup), ("cooldown", &self.cooldown)] {
            if let Some(t) = transient {
                t.validate(key, &self.constraints)?;
            }
        }
        if let (Some(Transient::Fraction(w)), Some(Transient::Fraction(c))) =
            (self.warmup, self.cooldown)
        {
            if w + c >= 1.0 {
                return Err(invalid(
                    "cooldown.fraction",
                    format!("warmup ({w}) and cooldown ({c}) together leave nothing to measure; keep their sum below 1"),
                ));
            }
        }
        self.data.validate()?;
        super::search::validate(self)?;
        self.validate_replay()?;
        self.validate_sessions()?;
        // Each scenario runs every profile step: the product is the plan's length.
        let planned = self.plan().len();
        if planned > MAX_STEPS as usize {
            return Err(invalid(
                "data.scenarios",
                format!("with the profile's steps the plan has {planned} benchmarks, more than the limit of {MAX_STEPS}; give fewer scenarios or steps"),
            ));
        }
        if let Some(slo) = &self.slo {
            let given = [
                ("ttft_ms", slo.ttft_ms),
                ("itl_ms", slo.itl_ms),
                ("tpot_ms", slo.tpot_ms),
                ("e2e_ms", slo.e2e_ms),
            ];
            if given.iter().all(|(_, v)| v.is_none()) {
                return Err(invalid(
                    "slo",
                    "is empty; give at least one of ttft_ms, itl_ms, tpot_ms, e2e_ms, or remove it",
                ));
            }
            for (key, value) in given {
                if let Some(v) = value {
                    let key = format!("slo.{key}");
                    positive(&key, v)?;
                    // Milliseconds, under the same 30-day bound as every duration.
                    let max_ms = MAX_SECONDS * 1000.0;
                    if v > max_ms {
                        return Err(invalid(&key, format!("{} ms is more than the limit of {max_ms} ms (30 days); give at most that", shown(v))));
                    }
                }
            }
        }
        for output in &self.outputs {
            output.resolved_format()?;
        }
        if let Some(shard) = &self.shard {
            shard.validate(self)?;
        }
        Ok(())
    }
}

impl Config {
    /// A replay sends a trace, and a trace is only replayed.
    fn validate_replay(&self) -> Result<(), ConfigError> {
        let replay = self.profile.kind == ProfileKind::Replay;
        let trace = self.data.kind == DataKind::Trace;
        if replay && !trace {
            return Err(invalid("data.kind", format!("`{}` has no recorded times to replay; profile.kind = `replay` needs data.kind = `trace` with data.path", self.data.kind.name())));
        }
        if trace && !replay {
            return Err(invalid("profile.kind", format!("`{}` cannot send a trace; data.kind = `trace` is replayed with profile.kind = `replay` (use data.kind = `file` for prompts without times)", self.profile.kind.name())));
        }
        if let Some(x) = self.profile.speedup {
            if !(x.is_finite() && (MIN_SPEEDUP..=MAX_SPEEDUP).contains(&x)) {
                return Err(invalid("profile.speedup", format!("{} is outside [{MIN_SPEEDUP}, {MAX_SPEEDUP}]; 1 replays the trace as recorded, 4 four times faster", shown(x))));
            }
        }
        if let Some(s) = self.profile.start_seconds {
            seconds("profile.start_seconds", s, false)?;
        }
        if let Some(b) = self.data.block_tokens {
            if b == 0 {
                return Err(invalid(
                    "data.block_tokens",
                    "0 tokens per block; use 1 or more, e.g. 512 (Mooncake's)",
                ));
            }
            at_most("data.block_tokens", b, MAX_TOKENS, "tokens")?;
        }
        Ok(())
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        message: message.into(),
    }
}

fn positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{} must be a positive number", shown(value)),
        ))
    }
}

/// A list of profile steps (`streams`, `rates`) no longer than [`MAX_STEPS`].
fn steps(key: &str, len: usize) -> Result<(), ConfigError> {
    if len > MAX_STEPS as usize {
        return Err(invalid(
            key,
            format!(
                "has {len} entries, more than the limit of {MAX_STEPS} benchmarks; give at most {MAX_STEPS}"
            ),
        ));
    }
    Ok(())
}

/// Rejects a key that `kind` does not read, and requires those it needs, by the section's
/// table of `rules`. The keys set are those `section` serializes: a field left out is skipped.
fn check_kind_keys<K: Copy + PartialEq>(
    name: &str,
    section: &impl Serialize,
    kind: K,
    kind_name: &str,
    rules: &[KeyRule<K>],
) -> Result<(), ConfigError> {
    let tree = serde_json::to_value(section).expect("a config section serializes to JSON");
    let set = |key: &str| tree.get(key).is_some();
    for rule in rules {
        if set(rule.key) && !rule.read_by.contains(&kind) {
            let mut reads: Vec<&KeyRule<K>> =
                rules.iter().filter(|r| r.read_by.contains(&kind)).collect();
            // What sets the kind apart first: the keys fewest kinds read.
            reads.sort_by_key(|r| r.read_by.len());
            let users = if reads.is_empty() {
                "it takes no other keys".to_owned()
            } else {
                let keys: Vec<&str> = reads.iter().map(|r| r.key).collect();
                format!("it reads only {}", keys.join(", "))
            };
            return Err(invalid(
                &format!("{name}.{}", rule.key),
                format!(
                    "not used by {name}.kind = `{kind_name}` ({users}); remove it or change the kind"
                ),
            ));
        }
    }
    for rule in rules {
        if rule.needed_by.contains(&kind) && !set(rule.key) {
            return Err(ConfigError::MissingKey {
                key: format!("{name}.{}", rule.key),
                hint: Some(format!("{name}.kind = `{kind_name}` needs it")),
            });
        }
    }
    Ok(())
}

impl Target {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(metrics) = &self.metrics {
            metrics.validate()?;
        }
        match self.kind() {
            TargetKind::Server => {
                let url = self.url.as_deref().ok_or_else(|| ConfigError::MissingKey {
                    key: "target.url".to_owned(),
                    hint: Some("target.kind = `server` needs the server's base URL, e.g. `http://127.0.0.1:8000`; or use kind = `mock`".to_owned()),
                })?;
                validate_url(url)?;
                if self.mock.is_some() {
                    return Err(invalid(
                        "target.mock",
                        "is only read with target.kind = `mock`; remove it or change the kind",
                    ));
                }
                // Absent, it is the one model the server lists (bench-runner asks before the
                // run); empty is a mistake.
                if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                    return Err(invalid(
                        "target.model",
                        "is empty; name the served model, as `GET /v1/models` lists it, or leave it out to use the one model the server lists",
                    ));
                }
            }
            TargetKind::Mock => {
                if let Some(url) = &self.url {
                    return Err(invalid("target.url", format!("`{url}` cannot be used with target.kind = `mock`: the embedded mock gets its own address; remove url or set kind = `server`")));
                }
                if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                    return Err(invalid(
                        "target.model",
                        "is empty; remove it to use the mock's default name",
                    ));
                }
            }
        }
        for (name, value) in &self.headers {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                return Err(invalid(
                    "target.headers",
                    format!("`{name}` is not a valid HTTP header name"),
                ));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(invalid(
                    &format!("target.headers.{name}"),
                    "header values cannot contain line breaks",
                ));
            }
        }
        seconds(
            "target.timeouts.connect_seconds",
            self.timeouts.connect_seconds,
            true,
        )?;
        seconds(
            "target.timeouts.read_seconds",
            self.timeouts.read_seconds,
            true,
        )?;
        if let Some(s) = self.timeouts.request_seconds {
            seconds("target.timeouts.request_seconds", s, true)?;
        }
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        match (&tls.client_cert, &tls.client_key) {
            (Some(_), None) => {
                return Err(ConfigError::MissingKey {
                    key: "target.tls.client_key".to_owned(),
                    hint: Some(
                        "target.tls.client_cert needs the PEM private key that goes with it"
                            .to_owned(),
                    ),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::MissingKey {
                    key: "target.tls.client_cert".to_owned(),
                    hint: Some(
                        "target.tls.client_key needs the PEM certificate that goes with it"
                            .to_owned(),
                    ),
                })
            }
            _ => {}
        }
        for (key, value) in [
            ("target.tls.ca_file", &tls.ca_file),
            ("target.tls.client_cert", &tls.client_cert),
            ("target.tls.client_key", &tls.client_key),
            ("target.tls.server_name", &tls.server_name),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(key, "is empty; remove it or give a value"));
            }
        }
        if tls.insecure_skip_verify && tls.ca_file.is_some() {
            return Err(invalid(
                "target.tls.insecure_skip_verify",
                "verifies nothing, so target.tls.ca_file would be ignored; give only one of them",
            ));
        }
        let plain = self
            .url
            .as_deref()
            .is_some_and(|u| u.trim().starts_with("http://"));
        if plain && !tls.is_default() {
            return Err(invalid(
                "target.tls",
                "is only used with an https:// target.url; remove it or use https",
            ));
        }
        Ok(())
    }
}

/// A base URL must be http(s) with a host.
fn validate_url(url: &str) -> Result<(), ConfigError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None if url.contains("://") => Err(invalid(
            "target.url",
            format!("`{url}` uses an unsupported scheme; use http:// or https://"),
        )),
        None => Err(invalid(
            "target.url",
            format!("`{url}` has no scheme; write `http://{url}`"),
        )),
        Some(host) if host.is_empty() || host.starts_with('/') => Err(invalid(
            "target.url",
            format!("`{url}` has no host; write e.g. `http://127.0.0.1:8000`"),
        )),
        Some(_) => Ok(()),
    }
}

impl Profile {
    fn validate(&self) -> Result<(), ConfigError> {
        check_kind_keys("profile", self, self.kind, self.kind.name(), PROFILE_KEYS)?;
        if let Some(streams) = &self.streams {
            if streams.is_empty() {
                return Err(invalid(
                    "profile.streams",
                    "is empty; give at least one stream count, e.g. [1, 4, 8]",
                ));
            }
            steps("profile.streams", streams.len())?;
            for (i, &n) in streams.iter().enumerate() {
                let key = format!("profile.streams[{i}]");
                if n == 0 {
                    return Err(invalid(&key, "0 streams send nothing; use 1 or more"));
                }
                at_most(&key, n, MAX_STREAMS, "streams")?;
            }
        }
        if let Some(rates) = &self.rates {
            if rates.is_empty() {
                return Err(invalid(
                    "profile.rates",
                    "is empty; give at least one rate in requests per second, e.g. [5.0]",
                ));
            }
            steps("profile.rates", rates.len())?;
            for (i, &rate) in rates.iter().enumerate() {
                let key = format!("profile.rates[{i}]");
                positive(&key, rate)?;
                if rate < MIN_RATE_PER_S {
                    return Err(invalid(&key, format!("{} requests per second is less than the minimum of {MIN_RATE_PER_S} (one request every 1000 s); give at least {MIN_RATE_PER_S}", shown(rate))));
                }
                if rate > MAX_RATE_PER_S {
                    return Err(invalid(&key, format!("{} requests per second is more than the limit of {MAX_RATE_PER_S}; give at most {MAX_RATE_PER_S}", shown(rate))));
                }
            }
        }
        if let Some(size) = self.sweep_size {
            if size < 2 {
                return Err(invalid("profile.sweep_size", format!("{size} is too small: a sweep needs at least 2 benchmarks (synchronous and throughput)")));
            }
            at_most("profile.sweep_size", size, MAX_STEPS, "benchmarks")?;
        }
        if let Some(cap) = self.max_concurrency {
            if cap == 0 {
                return Err(invalid(
                    "profile.max_concurrency",
                    "0 would send nothing; use 1 or more",
                ));
            }
            at_most("profile.max_concurrency", cap, MAX_STREAMS, "requests")?;
        }
        if let Some(r) = self.rampup_seconds {
            seconds("profile.rampup_seconds", r, false)?;
        }
        self.validate_burstiness()
    }

    /// `burstiness` in range, and in a sweep or a search given exactly when its steps are
    /// `gamma`.
    fn validate_burstiness(&self) -> Result<(), ConfigError> {
        let steps = matches!(self.kind, ProfileKind::Sweep | ProfileKind::Search);
        let gamma_steps = steps && self.strategy == Some(RateStrategy::Gamma);
        match self.burstiness {
            None if gamma_steps => Err(ConfigError::MissingKey {
                key: "profile.burstiness".to_owned(),
                hint: Some("profile.strategy = `gamma` needs the gaps' shape, e.g. 0.5 (burstier than Poisson) or 4 (more even)".to_owned()),
            }),
            Some(_) if steps && !gamma_steps => Err(invalid(
                "profile.burstiness",
                format!(
                    "is only read by a {} with profile.strategy = `gamma`; set that or remove it",
                    self.kind.name()
                ),
            )),
            Some(b) if !(MIN_BURSTINESS..=MAX_BURSTINESS).contains(&b) => Err(invalid(
                "profile.burstiness",
                format!("{} is outside [{MIN_BURSTINESS}, {MAX_BURSTINESS}]; 1 is Poisson, below 1 burstier, above 1 more even", shown(b)),
            )),
            _ => Ok(()),
        }
    }
}

impl Constraints {
    fn validate(&self, ends_on_its_own: bool) -> Result<(), ConfigError> {
        if self.max_seconds.is_none() && self.max_requests.is_none() && !ends_on_its_own {
            return Err(ConfigError::MissingKey {
                key: "constraints.max_seconds".to_owned(),
                hint: Some("set constraints.max_seconds or constraints.max_requests, or a benchmark never ends".to_owned()),
            });
        }
        if let Some(s) = self.max_seconds {
            seconds("constraints.max_seconds", s, true)?;
        }
        if let Some(g) = self.interrupt_grace_seconds {
            seconds("constraints.interrupt_grace_seconds", g, false)?;
        }
        if let Some(n) = self.max_requests {
            if n == 0 {
                return Err(invalid(
                    "constraints.max_requests",
                    "0 requests measure nothing; use 1 or more",
                ));
            }
            at_most("constraints.max_requests", n, MAX_REQUESTS, "requests")?;
        }
        if let Some(n) = self.max_errors {
            if n == 0 {
                return Err(invalid(
                    "constraints.max_errors",
                    "0 would stop before the first request; use 1 or more",
                ));
            }
            at_most("constraints.max_errors", n, MAX_REQUESTS, "errors")?;
        }
        if let Some(rate) = self.max_error_rate {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(invalid(
                    "constraints.max_error_rate",
                    format!("{rate} is not a share in (0, 1], e.g. 0.1 for 10 %"),
                ));
            }
        }
        if let Some(o) = &self.over_saturation {
            if let Some(min) = o.min_seconds {
                seconds("constraints.over_saturation.min_seconds", min, false)?;
            }
            if let Some(window) = o.window_seconds {
                if !(window.is_finite() && window >= 3.0) {
                    return Err(invalid(
                        "constraints.over_saturation.window_seconds",
                        format!(
                            "{} is too short: the trends need at least 3 seconds",
                            shown(window)
                        ),
                    ));
                }
                seconds("constraints.over_saturation.window_seconds", window, true)?;
            }
            if !(o.confidence > 0.5 && o.confidence < 1.0) {
                return Err(invalid(
                    "constraints.over_saturation.confidence",
                    format!("{} is not in (0.5, 1), e.g. 0.95", o.confidence),
                ));
            }
        }
        match self.error_rate_window {
            Some(_) if self.max_error_rate.is_none() => Err(invalid(
                "constraints.error_rate_window",
                "is only read with constraints.max_error_rate; set that too or remove it",
            )),
            Some(0) => Err(invalid(
                "constraints.error_rate_window",
                "must hold at least 1 request",
            )),
            Some(n) => at_most(
                "constraints.error_rate_window",
                n,
                MAX_ERROR_RATE_WINDOW,
                "requests",
            ),
            None => Ok(()),
        }
    }
}

impl Transient {
    fn validate(&self, key: &str, constraints: &Constraints) -> Result<(), ConfigError> {
        match *self {
            Transient::Fraction(f) => {
                if !(0.0..1.0).contains(&f) {
                    return Err(invalid(&format!("{key}.fraction"), format!("{f} is not in [0, 1); for an absolute length use `seconds` or `requests`")));
                }
            }
            Transient::Seconds(s) => {
                seconds(&format!("{key}.seconds"), s, false)?;
                if let Some(max) = constraints.max_seconds {
                    if s >= max {
                        return Err(invalid(&format!("{key}.seconds"), format!("{s} s is not shorter than constraints.max_seconds = {max}; nothing would be measured")));
                    }
                }
            }
            Transient::Requests(n) => {
                at_most(&format!("{key}.requests"), n, MAX_REQUESTS, "requests")?;
                if let Some(max) = constraints.max_requests {
                    if n >= max {
                        return Err(invalid(&format!("{key}.requests"), format!("{n} is not fewer than constraints.max_requests = {max}; nothing would be measured")));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Data {
    fn validate(&self) -> Result<(), ConfigError> {
        check_kind_keys("data", self, self.kind, self.kind.name(), DATA_KEYS)?;
        if self.kind == DataKind::Scenario {
            match (&self.scenario, &self.scenarios) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "data.scenarios",
                        "give either `scenario` or `scenarios`, not both",
                    ))
                }
                (None, None) => {
                    return Err(ConfigError::MissingKey {
                        key: "data.scenario".to_owned(),
                        hint: Some(
                            "data.kind = `scenario` needs a traffic scenario such as `D(100,100)`"
                                .to_owned(),
                        ),
                    })
                }
                (None, Some(list)) if list.is_empty() => {
                    return Err(invalid(
                        "data.scenarios",
                        "is empty; give at least one traffic scenario such as `D(100,100)`",
                    ))
                }
                _ => {}
            }
            let named = self
                .scenario
                .iter()
                .map(|s| ("data.scenario".to_owned(), s))
                .chain(
                    self.scenarios
                        .iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, s)| (format!("data.scenarios[{i}]"), s)),
                );
            for (key, text) in named {
                let scenario = Scenario::parse(text).map_err(|e| invalid(&key, e.to_string()))?;
                let largest = scenario.numbers().into_iter().max().unwrap_or(0);
                if largest > MAX_TOKENS {
                    return Err(invalid(&key, format!("`{text}` asks for {largest} tokens, more than the limit of {MAX_TOKENS}; give at most {MAX_TOKENS}")));
                }
            }
        }
        for (key, value) in [
            ("prompt_tokens", self.prompt_tokens),
            ("output_tokens", self.output_tokens),
            ("samples", self.samples),
        ] {
            if value == Some(0) {
                return Err(invalid(&format!("data.{key}"), "must be at least 1"));
            }
        }
        if let Some(n) = self.samples {
            at_most("data.samples", n, MAX_SAMPLES, "samples")?;
        }
        for (key, value) in [
            ("prompt_tokens", self.prompt_tokens),
            ("prompt_tokens_min", self.prompt_tokens_min),
            ("prompt_tokens_max", self.prompt_tokens_max),
            ("output_tokens", self.output_tokens),
            ("output_tokens_min", self.output_tokens_min),
            ("output_tokens_max", self.output_tokens_max),
            ("prefix_tokens", self.prefix_tokens),
        ] {
            if let Some(n) = value {
                at_most(&format!("data.{key}"), n, MAX_TOKENS, "tokens")?;
            }
        }
        for (key, stdev) in [
            ("prompt_tokens_stdev", self.prompt_tokens_stdev),
            ("output_tokens_stdev", self.output_tokens_stdev),
        ] {
            if let Some(s) = stdev {
                if !(s.is_finite() && s >= 0.0) {
                    return Err(invalid(
                        &format!("data.{key}"),
                        format!("{} must be zero or more", shown(s)),
                    ));
                }
                if s > f64::from(MAX_TOKENS) {
                    return Err(invalid(
                        &format!("data.{key}"),
                        format!("{} tokens is more than the limit of {MAX_TOKENS}; give at most {MAX_TOKENS}", shown(s)),
                    ));
                }
            }
        }
        for (name, min, max) in [
            (
                "prompt_tokens",
                self.prompt_tokens_min,
                self.prompt_tokens_max,
            ),
            (
                "output_tokens",
                self.output_tokens_min,
                self.output_tokens_max,
            ),
        ] {
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    return Err(invalid(
                        &format!("data.{name}_min"),
                        format!("{min} is larger than data.{name}_max = {max}"),
                    ));
                }
            }
        }
        let token_exact = matches!(self.kind, DataKind::Synthetic | DataKind::Scenario);
        match (token_exact, self.tokenizer.is_some(), self.approximate) {
            (true, false, None | Some(false)) => {
                return Err(ConfigError::MissingKey {
                    key: "data.tokenizer".to_owned(),
                    hint: Some(format!(
                        "data.kind = `{}` builds prompts of an exact token count, which needs the server's tokenizer: \
                         give a local tokenizer.json or the model directory holding it (the repository's test tokenizer is data/tokenizer), \
                         or set data.approximate = true to accept approximate prompt lengths",
                        self.kind.name()
                    )),
                })
            }
            (_, true, Some(true)) => {
                return Err(invalid(
                    "data.approximate",
                    "is true but data.tokenizer is given; remove one of them",
                ))
            }
            _ => {}
        }
        for (key, value) in [("tokenizer", &self.tokenizer), ("path", &self.path)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(
                    &format!("data.{key}"),
                    "is empty; give a file path",
                ));
            }
        }
        Ok(())
    }
}
