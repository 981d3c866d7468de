//! `run --metrics-listen ADDR`: serves the running benchmark's live figures
//! (`bench_core::live`) at `GET /metrics` in Prometheus's text format, for the whole run.
//!
//! The server has a thread and a one-thread runtime of its own, so a scrape never takes a
//! worker of the runtime that sends requests and measures them.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use bench_core::live::{LiveMetrics, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// The listener, serving until dropped.
#[derive(Debug)]
pub(crate) struct LiveExport {
    live: Arc<LiveMetrics>,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LiveExport {
    /// Binds `address` (`HOST:PORT`; port 0 picks a free one) and starts serving. A bad or
    /// busy address is an error naming it, before any request is sent.
    pub(crate) fn start(address: &str) -> anyhow::Result<Self> {
        let addresses: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|e| {
                anyhow!(
                    "--metrics-listen `{address}` is not an address to listen on ({e}); give HOST:PORT, e.g. 127.0.0.1:9464"
                )
            })?
            .collect();
        let listener = TcpListener::bind(&addresses[..])
            .with_context(|| {
                format!(
                    "--metrics-listen cannot listen on `{address}` (in use, or not an address of this machine); choose another port or address"
                )
            })?;
        listener
            .set_nonblocking(true)
            .context("--metrics-listen: cannot make the listener non-blocking")?;
        let address = listener
            .local_addr()
            .context("--metrics-listen: cannot read the bound address")?;
        let live = Arc::new(LiveMetrics::new());
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("--metrics-listen: cannot start the server's runtime")?;
        let served = live.clone();
        let thread = std::thread::Builder::new()
            .name("llm-bench-metrics".to_owned())
            .spawn(move || runtime.block_on(serve(listener, served, stopped)))
            .context("--metrics-listen: cannot start the server's thread")?;
        Ok(Self {
            live,
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The figures it serves, for the runs' contexts.
    pub(crate) fn live(&self) -> Arc<LiveMetrics> {
        self.live.clone()
    }

    /// Where it listens (the port chosen, when 0 was asked).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for LiveExport {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped`; each is served on its own task.
async fn serve(listener: TcpListener, live: Arc<LiveMetrics>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("--metrics-listen: cannot serve: {error}");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A failed accept (out of descriptors) loses one scrape, not the server.
                Err(error) => {
                    tracing::debug!("--metrics-listen: accept failed: {error}");
                    continue;
                }
            },
            _ = &mut stopped => return,
        };
        let live = live.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &live);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `GET /metrics` (or `HEAD`): the figures; any other path 404, any other method 405.
fn respond(request: &Request<Incoming>, live: &LiveMetrics) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &str| {
        let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: llm-bench serves its live figures at /metrics\n",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET /metrics\n");
        response.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from(live.render())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A plain HTTP/1.1 request to `address`; the status line and the body.
    fn get(address: SocketAddr, method: &str, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(address).expect("the server accepts");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .expect("the request is written");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("a response");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (
            head.lines().next().unwrap_or("").to_owned(),
            body.to_owned(),
        )
    }

    #[test]
    fn it_serves_metrics_and_refuses_other_paths_and_methods() {
        let export = LiveExport::start("127.0.0.1:0").expect("port 0 binds");
        assert_ne!(export.address().port(), 0);
        let (status, body) = get(export.address(), "GET", "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("# TYPE llm_bench_build_info gauge"), "{body}");
        let (status, body) = get(export.address(), "GET", "/");
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        assert!(body.contains("/metrics"));
        let (status, _) = get(export.address(), "POST", "/metrics");
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        let address = export.address();
        drop(export);
        assert!(
            std::net::TcpStream::connect(address).is_err(),
            "dropped, it stops listening"
        );
    }

    #[test]
    fn a_busy_or_bad_address_is_an_error_naming_it() {
        let export = LiveExport::start("127.0.0.1:0").expect("port 0 binds");
        let busy = export.address().to_string();
        let error = format!("{:#}", LiveExport::start(&busy).expect_err("busy"));
        assert!(
            error.contains(&format!("cannot listen on `{busy}`")),
            "{error}"
        );
        let error = format!("{:#}", LiveExport::start("9464").expect_err("no host"));
        assert!(
            error.contains("`9464` is not an address") && error.contains("127.0.0.1:9464"),
            "{error}"
        );
    }
}
