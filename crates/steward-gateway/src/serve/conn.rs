//! Serving connections with time-outs: axum::serve has no knobs, so the gateway drives
//! hyper-util's HTTP/1.1 + HTTP/2 connection builder itself and watches every connection.
//!
//! A connection is always in one of three phases:
//! - **head**: from accept, or from the first byte after an idle spell, until a request's head
//!   is complete: at most `header_read_timeout` (slow or half-sent headers are closed);
//! - **busy**: at least one request is being answered (its body is read by [`super::admit`]
//!   within `body_read_timeout`; answers, streams included, take as long as they take);
//! - **idle**: no request in flight and nothing sent since: at most `idle_timeout`.
//!
//! hyper's own header time-out restarts when a keep-alive connection goes idle, which would
//! make the idle time-out the header time-out: the watcher below keeps them apart.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The time-outs every connection is held to (`limits:` in steward.yaml).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head(Instant),
    Busy,
    Idle(Instant),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    active: usize,
    /// HTTP/2 sends frames (PING, SETTINGS) between requests: those do not start a head.
    h2: bool,
}

/// What the watcher knows of one connection; shared by its reader, its service and itself.
struct Clock {
    state: Mutex<State>,
    changed: Notify,
}

impl Clock {
    fn new() -> Arc<Clock> {
        Arc::new(Clock {
            state: Mutex::new(State {
                phase: Phase::Head(Instant::now()),
                active: 0,
                h2: false,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: after an idle spell they are the start of the next request's head.
    fn read_some(&self) {
        let mut s = self.lock();
        if let Phase::Idle(_) = s.phase
            && !s.h2
        {
            s.phase = Phase::Head(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>, h2: bool) -> Active {
        let mut s = self.lock();
        s.active += 1;
        s.h2 |= h2;
        s.phase = Phase::Busy;
        drop(s);
        self.changed.notify_one();
        Active(self.clone())
    }

    /// When the current phase runs out, and whether that closes at once (a head) or gracefully.
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, bool)> {
        match self.lock().phase {
            Phase::Head(since) => Some((since + limits.header_read, true)),
            Phase::Idle(since) => Some((since + limits.idle, false)),
            Phase::Busy => None,
        }
    }
}

/// One request being answered; dropped when its answer (body included) is done or abandoned.
struct Active(Arc<Clock>);

impl Drop for Active {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.active = s.active.saturating_sub(1);
        if s.active == 0 {
            s.phase = Phase::Idle(Instant::now());
        }
        drop(s);
        self.0.changed.notify_one();
    }
}

/// The socket, reporting reads to the clock.
struct Watched {
    io: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.read_some();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A response body that keeps its request counted as active until it is sent or dropped.
struct Tracked {
    inner: Body,
    _active: Active,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts connections until `shutdown` resolves, then lets every connection finish its
/// requests (HTTP/2: GOAWAY) and returns once all have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = Builder::new(TokioExecutor::new());
    // The watcher enforces header and idle time-outs: hyper's timer would merge them.
    builder.http1().keep_alive(true).header_read_timeout(None);
    builder.http2().enable_connect_protocol();
    let builder = Arc::new(builder);
    loop {
        let (stream, _addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            router.clone(),
            limits,
            builder.clone(),
            stop_rx.clone(),
        ));
    }
    drop(listener);
    // Only the connections' receivers may keep `closed()` below from resolving.
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver: all closed when the last one ends.
    stop_tx.closed().await;
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ConnLimits,
    builder: Arc<Builder<TokioExecutor>>,
    mut stop: watch::Receiver<bool>,
) {
    let clock = Clock::new();
    let io = TokioIo::new(Watched {
        io: stream,
        clock: clock.clone(),
    });
    let service_clock = clock.clone();
    let router = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        use hyper::service::Service;
        let active = service_clock.request_started(req.version() == hyper::Version::HTTP_2);
        let answer = router.call(req.map(Body::new));
        async move {
            let response = match answer.await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, std::convert::Infallible>(response.map(|inner| Tracked { inner, _active: active }))
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        let changed = clock.changed.notified();
        let deadline = clock.deadline(&limits);
        let sleep = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = changed => {}
            _ = sleep => {
                // The phase may have moved on while the timer ran: look again.
                let Some((at, abrupt)) = clock.deadline(&limits) else { continue };
                if Instant::now() < at {
                    continue;
                }
                if abrupt || closing {
                    tracing::debug!("connection closed: request head not received in time");
                    return;
                }
                tracing::trace!("idle connection closed");
                conn.as_mut().graceful_shutdown();
                closing = true;
                // Give a graceful close (HTTP/2 GOAWAY) one header time-out to finish.
                clock.lock().phase = Phase::Head(Instant::now());
            }
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}
