//! Newline-delimited framing for the stdio transport, with a hard size limit per message.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// One framed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete message without its line ending.
    Message(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded, not buffered.
    TooLong { bytes: usize },
}

/// Reads lines of at most `max` bytes; longer ones are skipped to their end and reported.
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// The next non-empty line, or `None` at end of input.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            match self.read_one().await? {
                Some(Line::Message(m)) if m.iter().all(|b| b.is_ascii_whitespace()) => continue,
                other => return Ok(other),
            }
        }
    }

    async fn read_one(&mut self) -> std::io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let mut total = 0usize;
        let mut discarding = false;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                // End of input: a final line without a newline still counts.
                return Ok(match (discarding, buf.is_empty()) {
                    (true, _) => Some(Line::TooLong { bytes: total }),
                    (false, true) => None,
                    (false, false) => Some(Line::Message(trim_cr(buf))),
                });
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            total += chunk.len();
            if !discarding {
                if total > self.max {
                    discarding = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            let consumed = done.unwrap_or(chunk.len());
            self.inner.consume(consumed);
            if done.is_some() {
                return Ok(Some(if discarding {
                    Line::TooLong { bytes: total }
                } else {
                    Line::Message(trim_cr(buf))
                }));
            }
        }
    }
}

fn trim_cr(mut v: Vec<u8>) -> Vec<u8> {
    if v.last() == Some(&b'\r') {
        v.pop();
    }
    v
}

enum Out {
    Line(Vec<u8>),
    Close,
}

/// A cloneable handle that queues lines for one writer task.
#[derive(Clone)]
pub struct LineWriter {
    tx: mpsc::UnboundedSender<Out>,
}

impl LineWriter {
    /// Starts a task that writes queued lines to `out`, flushing whenever the queue is empty.
    /// The task ends when every handle is dropped or the output fails.
    pub fn spawn<W: AsyncWrite + Unpin + Send + 'static>(
        mut out: W,
    ) -> (LineWriter, tokio::task::JoinHandle<std::io::Result<()>>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        let task = tokio::spawn(async move {
            'outer: while let Some(msg) = rx.recv().await {
                let mut next = Some(msg);
                while let Some(msg) = next {
                    match msg {
                        Out::Line(mut line) => {
                            line.push(b'\n');
                            out.write_all(&line).await?;
                        }
                        Out::Close => break 'outer,
                    }
                    next = rx.try_recv().ok();
                }
                out.flush().await?;
            }
            out.flush().await?;
            out.shutdown().await.ok();
            Ok(())
        });
        (LineWriter { tx }, task)
    }

    /// Queues a line (without its newline). Returns false when the writer has stopped.
    pub fn send(&self, line: Vec<u8>) -> bool {
        self.tx.send(Out::Line(line)).is_ok()
    }

    /// Writes what is queued, then closes the output, whatever other handles exist.
    pub fn close(&self) {
        let _ = self.tx.send(Out::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_and_limits_lines() {
        let input = b"{\"a\":1}\r\n\n  \n0123456789ABCDEF\n{\"b\":2}".to_vec();
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(4, &input[..]), 10);
        assert_eq!(r.next().await.unwrap(), Some(Line::Message(b"{\"a\":1}".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Line::TooLong { bytes: 16 }));
        assert_eq!(r.next().await.unwrap(), Some(Line::Message(b"{\"b\":2}".to_vec())));
        assert_eq!(r.next().await.unwrap(), None);
    }
}
