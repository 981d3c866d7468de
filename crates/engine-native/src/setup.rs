//! Connection set-up (TCP connect, a proxy's CONNECT, the TLS handshake) timed apart from the
//! request that waited for it, so that TTFT starts when the request could go on the wire.
//!
//! A layer around reqwest's connector times every connection it opens, into the client's
//! [`Opened`] (what the report counts per benchmark: requests' connections and the drain's). A
//! connection is opened inside the task of the request that needed it, whose slot (a
//! task-local) also receives the set-up time with the connection's local address. A request
//! credits itself with that time only if its response came on that very connection: when
//! another connection freed up first, the request was served by it and paid nothing.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bench_core::stats::Histogram;
use hyper_util::client::legacy::connect::{Connection, HttpInfo};

tokio::task_local! {
    /// The slot of the request whose task is running.
    static SLOT: Arc<Slot>;
}

/// What the connector did for one request: the connections it opened, with their set-up times.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    opened: Mutex<Vec<(Option<SocketAddr>, Duration)>>,
}

impl Slot {
    /// Runs `request` with this slot as the one connections report to.
    pub(crate) async fn scope<F: Future>(self: Arc<Self>, request: F) -> F::Output {
        SLOT.scope(self, request).await
    }

    /// The set-up time of the connection `response` came on, if this request opened it.
    pub(crate) fn setup_of(&self, response: &reqwest::Response) -> Option<Duration> {
        let local = response.extensions().get::<HttpInfo>()?.local_addr();
        let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        opened
            .iter()
            .find(|(address, _)| *address == Some(local))
            .map(|(_, setup)| *setup)
    }
}

/// Every connection a client opened since the last [`Opened::take`], with its set-up time.
#[derive(Debug)]
pub(crate) struct Opened(Mutex<Histogram>);

impl Default for Opened {
    fn default() -> Self {
        Self(Mutex::new(Histogram::for_milliseconds()))
    }
}

impl Opened {
    pub(crate) fn record(&self, setup: Duration) {
        let mut setups = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = setups.record(setup.as_secs_f64() * 1000.0);
    }

    /// The connections opened so far (their count and set-up times in ms), starting afresh.
    pub(crate) fn take(&self) -> Histogram {
        let mut setups = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *setups, Histogram::for_milliseconds())
    }
}

/// The layer to give `reqwest::ClientBuilder::connector_layer`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timing(pub(crate) Arc<Opened>);

impl<S> tower_layer::Layer<S> for Timing {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner, self.0.clone())
    }
}

/// reqwest's connector, timed.
#[derive(Debug, Clone)]
pub(crate) struct Timed<S>(S, Arc<Opened>);

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R>,
    S::Response: Connection,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, destination: R) -> Self::Future {
        // Called from the task of the request that found no idle connection.
        let slot = SLOT.try_with(Arc::clone).ok();
        let opened = self.1.clone();
        let started = Instant::now();
        let connecting = self.0.call(destination);
        Box::pin(async move {
            let connection = connecting.await?;
            let setup = started.elapsed();
            opened.record(setup);
            if let Some(slot) = slot {
                let mut extras = http::Extensions::new();
                connection.connected().get_extras(&mut extras);
                let local = extras.get::<HttpInfo>().map(HttpInfo::local_addr);
                slot.opened
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((local, setup));
            }
            Ok(connection)
        })
    }
}
