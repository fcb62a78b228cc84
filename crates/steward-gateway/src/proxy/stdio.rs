//! The client's stdin and stdout, read and written directly. When they are pipes (as MCP clients
//! start servers), they are used as non-blocking pipes on the proxy's own thread: no blocking
//! pool, no thread hop per line. Anything else (a file, a terminal) falls back to tokio's stdio.

use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// The client's input.
pub enum Input {
    Pipe(pipe::Receiver),
    Std(tokio::io::Stdin),
}

/// The client's output.
pub enum Output {
    Pipe(pipe::Sender),
    Std(tokio::io::Stdout),
}

fn is_fifo(fd: &impl AsFd) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Ok(dup) = fd.as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(dup)
        .metadata()
        .is_ok_and(|m| m.file_type().is_fifo())
}

fn owned(fd: std::os::fd::BorrowedFd<'_>) -> Option<OwnedFd> {
    fd.try_clone_to_owned().ok()
}

impl Input {
    pub fn stdin() -> Input {
        let stdin = std::io::stdin();
        if is_fifo(&stdin)
            && let Some(fd) = owned(stdin.as_fd())
            && let Ok(p) = pipe::Receiver::from_owned_fd(fd)
        {
            return Input::Pipe(p);
        }
        Input::Std(tokio::io::stdin())
    }
}

impl Output {
    pub fn stdout() -> Output {
        let stdout = std::io::stdout();
        if is_fifo(&stdout)
            && let Some(fd) = owned(stdout.as_fd())
            && let Ok(p) = pipe::Sender::from_owned_fd(fd)
        {
            return Output::Pipe(p);
        }
        Output::Std(tokio::io::stdout())
    }
}

impl AsyncRead for Input {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Input::Pipe(p) => Pin::new(p).poll_read(cx, buf),
            Input::Std(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Output {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Output::Pipe(p) => Pin::new(p).poll_write(cx, buf),
            Output::Std(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Output::Pipe(p) => Pin::new(p).poll_flush(cx),
            Output::Std(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Output::Pipe(p) => Pin::new(p).poll_shutdown(cx),
            Output::Std(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
