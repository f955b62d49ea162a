//! Serves build records over HTTP (hyper on tokio).
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server};
use std::convert::Infallible;
use std::net::SocketAddr;

async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let base = url::Url::parse("http://localhost/").unwrap();
    let path = base.join(req.uri().path()).map(|u| u.path().to_string()).unwrap_or_default();
    tracing::info!(%path, "request");
    let unit = model::Unit::new(&path, "crate", 0);
    let body = serde_json::to_vec(&unit).unwrap_or_default();
    Ok(Response::new(Body::from(bytes::Bytes::from(body))))
}

/// Serves until `stop` resolves.
pub async fn serve(addr: SocketAddr, stop: impl futures::Future<Output = ()>) -> hyper::Result<()> {
    let make = make_service_fn(|_| async { Ok::<_, Infallible>(service_fn(handle)) });
    Server::bind(&addr).serve(make).with_graceful_shutdown(stop).await
}

/// Installs a log subscriber filtered by RUST_LOG.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
}

/// Runs a server on an ephemeral port for `ms` milliseconds.
pub fn run_for(ms: u64) -> hyper::Result<()> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(serve(([127, 0, 0, 1], 0).into(), tokio::time::sleep(std::time::Duration::from_millis(ms))))
}
