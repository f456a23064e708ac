//! The daemon's HTTP status endpoint: `/metrics` (Prometheus text format),
//! `/healthz` (the daemon is serving) and `/readyz` (it is registered with
//! the runtime). It listens on loopback unless told otherwise.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http_body_util::Full;
use hyper::{
    body::{Bytes, Incoming},
    header::CONTENT_TYPE,
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{metrics::Metrics, protocol::RuntimeLink};

/// Default address of the status endpoint.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9465";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoint reports on.
#[derive(Clone)]
pub struct Status {
    /// The metrics served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The runtime connection `/readyz` reports.
    pub link: RuntimeLink,
}

/// Binds the endpoint. Binding is separate from serving so that a taken
/// port fails the start of the daemon, not a background task.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    if !address.ip().is_loopback() {
        tracing::info!(%address, "status endpoint listens beyond loopback, as configured");
    }
    TcpListener::bind(address).await
}

/// Serves requests on `listener` until `stop`.
pub async fn serve(listener: TcpListener, status: Status, stop: CancellationToken) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    }
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "status endpoint: accept failed");
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let status = status.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&status, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "status endpoint: connection ended");
            }
        });
    }
}

fn respond(status: &Status, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/metrics" => {
            status.metrics.runtime_link(&status.link);
            let mut response = text(StatusCode::OK, status.metrics.encode());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, OPENMETRICS.parse().expect("valid header"));
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if status.link.is_connected() => text(StatusCode::OK, "registered\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not registered with the runtime\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        ),
    }
}

fn text(code: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = code;
    response
}
