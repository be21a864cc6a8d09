//! Accepting and driving connections: the connection limit, TLS, hyper's HTTP/1.1 with size and
//! time limits, and graceful shutdown.
//!
//! Shutdown follows mini-redis: [`Server::run`] takes the shutdown trigger as a future (signals
//! in production, a channel in tests). When it fires the listener is closed, every connection
//! is told through a `watch` channel to finish its current response and close, and `run`
//! returns once the last connection task has dropped its completion sender (or the grace
//! period ran out).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use super::accesslog::AccessLog;
use super::error::ServeError;
use super::metrics::Metrics;
use super::{App, Site, router};

/// Resource limits; the defaults suit a public mirror.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once; beyond it a client gets `503` and the connection is closed.
    pub max_connections: usize,
    /// Time allowed to receive a request head, counted from when the server starts waiting for
    /// it, so it is also the keep-alive idle timeout (nginx `client_header_timeout`).
    pub header_timeout: Duration,
    /// Longest stall of a response write (nginx `send_timeout`): a client that stops reading
    /// is dropped.
    pub send_timeout: Duration,
    /// Time to produce a response head (the body streams afterwards).
    pub response_timeout: Duration,
    /// Bytes of request line plus headers (hyper answers `431` beyond; minimum 8192).
    pub max_header_bytes: usize,
    /// Number of request headers.
    pub max_headers: usize,
    /// Length of the request target (`414` beyond).
    pub max_uri_bytes: usize,
    /// How long shutdown waits for in-flight responses.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(20),
            send_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_uri_bytes: 4096,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A configured server, ready to [`run`](Server::run) on a listener.
pub struct Server {
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
}

/// Binds a TCP listener (`127.0.0.1:0` picks a free port; read it back with `local_addr`).
pub async fn bind(addr: &str) -> Result<TcpListener, ServeError> {
    let sock: SocketAddr =
        addr.parse()
            .map_err(|e: std::net::AddrParseError| ServeError::ListenAddr {
                addr: addr.to_string(),
                message: e.to_string(),
            })?;
    TcpListener::bind(sock)
        .await
        .map_err(|source| ServeError::Bind { addr: sock, source })
}

/// The production shutdown trigger: a future that resolves on SIGINT or SIGTERM (SIGHUP is
/// logged and ignored).
///
/// The handlers are installed by this call, not when the future is first polled, so call it
/// before announcing the address: a signal that arrives early then still means "shut down
/// gracefully" instead of the default "die now".
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, ServeError> {
    shutdown_signal_reopening(None)
}

/// [`shutdown_signal`], and SIGHUP reopens `access_log` (after logrotate moved it).
pub fn shutdown_signal_reopening(
    access_log: Option<AccessLog>,
) -> Result<impl Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    // SIGHUP's default action kills; a server has nothing to reload, so it is logged instead.
    let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => match &access_log {
                    Some(log) => {
                        tracing::info!("SIGHUP: reopening the access log {}", log.path().display());
                        log.reopen();
                    }
                    None => tracing::info!(
                        "SIGHUP ignored: `debsync serve` reads its config once (`debsync daemon` reloads)"
                    ),
                },
            }
        }
        tracing::info!("shutdown requested; finishing in-flight responses");
    })
}

impl Server {
    pub fn new(site: Site, limits: Limits) -> Server {
        let limits = Limits {
            max_header_bytes: limits.max_header_bytes.max(8192),
            max_connections: limits.max_connections.max(1),
            ..limits
        };
        Server {
            app: Arc::new(App {
                site,
                limits,
                metrics: Metrics::default(),
                dircache: Default::default(),
                anchors: Default::default(),
                hot: Default::default(),
                extra_metrics: None,
                push: None,
                access_log: None,
                https: false,
            }),
            tls: None,
        }
    }

    /// Appends `extra`'s samples to every `/metrics` response.
    pub fn with_metrics(mut self, extra: super::ExtraMetrics) -> Server {
        if let Some(app) = Arc::get_mut(&mut self.app) {
            app.extra_metrics = Some(extra);
        }
        self
    }

    /// Takes pushes (`POST /-/sync/<mirror>`) for `target`; without it they answer 404.
    pub fn with_push(mut self, target: Arc<dyn super::SyncPush>) -> Server {
        if let Some(app) = Arc::get_mut(&mut self.app) {
            app.push = Some(target);
        }
        self
    }

    /// Writes the access lines to `log` instead of the `debsync::access` log target.
    pub fn with_access_log(mut self, log: AccessLog) -> Server {
        if let Some(app) = Arc::get_mut(&mut self.app) {
            app.access_log = Some(log);
        }
        self
    }

    /// Serves HTTPS with a PEM certificate chain and private key.
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> Result<Server, ServeError> {
        self.tls = Some(super::tls::acceptor(cert, key)?);
        if let Some(app) = Arc::get_mut(&mut self.app) {
            app.https = true;
        }
        Ok(self)
    }

    /// `http` or `https`, for the `listening on` line.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Accepts connections until `shutdown` resolves, then drains them (see the module doc).
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let Server { app, tls } = self;
        let limits = app.limits.clone();
        let router = router(app.clone());
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                app.metrics.connection_rejected();
                tokio::spawn(reject(stream, limits.send_timeout));
                continue;
            };
            let conn = Connection {
                app: app.clone(),
                router: router.clone(),
                tls: tls.clone(),
                peer,
                stop: stop_rx.clone(),
                _done: done_tx.clone(),
            };
            tokio::spawn(async move {
                conn.serve(stream).await;
                drop(permit);
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        drop(done_tx);
        if tokio::time::timeout(limits.shutdown_grace, done_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown grace period ({:?}) over; dropping remaining connections",
                limits.shutdown_grace
            );
        }
        Ok(())
    }
}

/// Over the connection limit: a short `503` and close, without parsing the request.
///
/// After the response the request bytes are drained for a moment (a "lingering close"):
/// closing a socket with unread input sends a reset, which can destroy the `503` before the
/// client has read it.
async fn reject(mut stream: TcpStream, limit: Duration) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
        content-length: 29\r\nretry-after: 1\r\nconnection: close\r\n\r\ntoo many connections, retry\r\n";
    let _ = tokio::time::timeout(limit, async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

struct Connection {
    app: Arc<App>,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    /// Dropped when the connection ends: `run` waits for all of them.
    _done: mpsc::Sender<()>,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let app = self.app.clone();
        app.metrics.connection_opened();
        let _ = stream.set_nodelay(true);
        match self.tls.clone() {
            None => self.http(stream).await,
            Some(acceptor) => {
                let limit = self.app.limits.header_timeout;
                match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => self.http(tls).await,
                    Ok(Err(e)) => tracing::debug!(peer = %self.peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
        app.metrics.connection_closed();
    }

    async fn http<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = &self.app.limits;
        let (app, router, peer) = (self.app.clone(), self.router.clone(), self.peer);
        let svc = hyper::service::service_fn(move |req| {
            super::handle(app.clone(), router.clone(), peer, req)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true);
        let io = TokioIo::new(SendTimeout::new(io, limits.send_timeout));
        let conn = builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let result = if *self.stop.borrow() {
            conn.as_mut().graceful_shutdown();
            conn.await
        } else {
            tokio::select! {
                r = conn.as_mut() => r,
                _ = self.stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %self.peer, "connection ended: {e}");
        }
    }
}

/// Fails a write (and so the connection) that makes no progress for `limit`.
struct SendTimeout<I> {
    inner: I,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
    armed: bool,
}

impl<I> SendTimeout<I> {
    fn new(inner: I, limit: Duration) -> Self {
        SendTimeout {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// Called with the result of a write-side poll.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.armed {
                    self.armed = true;
                    let at = Instant::now() + self.limit;
                    self.deadline.as_mut().reset(at);
                }
                match self.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading (send timeout)",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, polled)
    }
}
