//! A TCP proxy for network faults a broker cannot show by itself.

use tokio_util::sync::CancellationToken;

/// A TCP proxy in front of a broker, for network faults the broker itself
/// cannot show: not reachable yet, or a silent partition (connections stay
/// open, nothing passes).
pub struct Proxy {
    /// Client to broker.
    up: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// Broker to client.
    down: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on `port` (e.g. reserved earlier with `free_port`) and
    /// forwards every connection to `upstream` on 127.0.0.1.
    pub async fn start(port: u16, upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let up = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let down = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let stop = CancellationToken::new();
        let (u, d, s) = (up.clone(), down.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => return },
                };
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, u.subscribe(), s.clone()));
                tokio::spawn(pipe(sr, cw, d.subscribe(), s.clone()));
            }
        });
        Proxy { up, down, stop }
    }

    /// A silent partition: connections stay open, nothing gets through.
    pub fn pause(&self) {
        self.up.send_replace(true);
        self.down.send_replace(true);
    }

    /// Only what the client sends is held; the broker still talks to it.
    pub fn pause_upstream(&self) {
        self.up.send_replace(true);
    }

    pub fn resume(&self) {
        self.up.send_replace(false);
        self.down.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            _ = stop.cancelled() => return,
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
        };
        // While paused, hold the data (as a dead link would).
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
