//! The served model, when the config does not name it: asked of the server once, before any
//! engine's preflight, so that every engine (and the report's config) gets the same name.

use bench_core::config::TargetKind;
use bench_core::{Config, EngineError};

use crate::{runtime, RunError};

/// Sets `target.model` to the one model the server's `GET /v1/models` lists when the config
/// leaves it out, and returns it; None when there was nothing to discover (the model is given,
/// or the target is the embedded mock, which serves its own default name). Several models, none,
/// or no model list are a config error that says what to pass; a server that does not answer
/// is a target error.
pub fn discover_model(config: &mut Config) -> Result<Option<String>, RunError> {
    let target = &config.target;
    if target.kind() != TargetKind::Server || target.model.is_some() {
        return Ok(None);
    }
    let model = runtime()?
        .block_on(bench_target::discover_model(target))
        .map_err(EngineError::from)?;
    tracing::info!("target.model: `{model}`, the one model the server lists");
    config.target.model = Some(model.clone());
    Ok(Some(model))
}
