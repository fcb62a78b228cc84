//! Server-sent events: encoding our own streams, decoding an upstream's.

/// One SSE event carrying a JSON-RPC message.
pub fn encode_message(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 24);
    out.extend_from_slice(b"event: message\n");
    // A JSON-RPC message is one line, but be safe: every line of data gets its own prefix.
    for line in message.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// A comment line that keeps idle connections open through proxies.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// An event decoded from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub data: Vec<u8>,
    /// The stream's last event id after this event (`id:`), for resuming.
    pub id: Option<String>,
}

/// Incremental SSE decoder (the WHATWG event-stream grammar) with a limit on one event's size.
///
/// Linear in the input: every byte is looked at once. Lines end at `\n`, `\r\n` or a bare `\r`;
/// a blank line dispatches the event. `retry:` is recorded, other fields are ignored.
pub struct Decoder {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Vec<u8>,
    has_data: bool,
    last_id: Option<String>,
    retry_ms: Option<u64>,
    max_event: usize,
}

impl Decoder {
    pub fn new(max_event: usize) -> Decoder {
        Decoder {
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: Vec::new(),
            has_data: false,
            last_id: None,
            retry_ms: None,
            max_event,
        }
    }

    /// The reconnection time the stream asked for (`retry:`), if any.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Feeds bytes; returns the complete events they finish. Errors when an event exceeds the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(r) = rest.strip_prefix(b"\n") {
                rest = r;
            }
        }
        while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..i]);
            self.check_size()?;
            let is_cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(e) = self.end_line(&line) {
                events.push(e);
            }
        }
        self.line.extend_from_slice(rest);
        self.check_size()?;
        Ok(events)
    }

    fn check_size(&self) -> Result<(), String> {
        if self.line.len() + self.data.len() > self.max_event {
            return Err(format!("an SSE event exceeds {} bytes", self.max_event));
        }
        Ok(())
    }

    /// Handles one complete line; a blank line dispatches the event gathered so far.
    fn end_line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let event = self.event.take();
            let data = std::mem::take(&mut self.data);
            let had = std::mem::replace(&mut self.has_data, false);
            return had.then(|| Event {
                event,
                data,
                id: self.last_id.clone(),
            });
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // An id with NUL is ignored, as the standard says.
            b"id" if !value.contains(&0) => self.last_id = Some(String::from_utf8_lossy(value).into_owned()),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry_ms = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_chunking() {
        let enc = encode_message(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let mut d = Decoder::new(1024);
        let (a, b) = enc.split_at(10);
        assert!(d.push(a).unwrap().is_empty());
        let mut events = d.push(b).unwrap();
        events.extend(
            d.push(b": ping\n\nevent: endpoint\r\ndata: /messages?x=1\r\n\r\n")
                .unwrap(),
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec());
        assert_eq!(events[1].event.as_deref(), Some("endpoint"));
        assert!(Decoder::new(4).push(b"data: 123456").is_err());
    }

    #[test]
    fn bare_carriage_returns_ids_and_retry() {
        let mut d = Decoder::new(1024);
        let events = d.push(b"retry: 2500\rid: 7\rdata: a\rdata: b\r\r").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, b"a\nb".to_vec());
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(d.retry_ms(), Some(2500));
        // A \r\n split across chunks is one line ending, not two.
        let mut d = Decoder::new(1024);
        assert!(d.push(b"data: x\r").unwrap().is_empty());
        assert!(d.push(b"\n").unwrap().is_empty());
        let events = d.push(b"\r\n").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, b"x".to_vec());
    }

    #[test]
    fn one_large_event_in_many_chunks_is_linear_and_bounded() {
        let mut d = Decoder::new(1 << 20);
        assert!(d.push(b"data: ").unwrap().is_empty());
        for _ in 0..1000 {
            assert!(d.push(&[b'x'; 512]).unwrap().is_empty());
        }
        let events = d.push(b"\n\n").unwrap();
        assert_eq!(events[0].data.len(), 512_000);
        let mut small = Decoder::new(1000);
        assert!(small.push(b"data: ").is_ok());
        assert!(small.push(&[b'x'; 600]).is_ok());
        assert!(small.push(&[b'x'; 600]).is_err());
    }
}
