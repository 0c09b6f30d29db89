//! Serving a sandbox: its router on a given listener or on 127.0.0.1 and a free port, until the
//! handle that owns the [`Served`] guard is dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::{net::TcpListener, task::JoinHandle};

/// A router being served; dropping it stops the server.
#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `listener`, or on 127.0.0.1 and a free port.
pub async fn serve(router: Router, listener: Option<TcpListener>) -> std::io::Result<Served> {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind("127.0.0.1:0").await?,
    };
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Served { addr, task })
}
