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
}

/// Incremental SSE decoder with a limit on one event's size.
pub struct Decoder {
    buf: Vec<u8>,
    max_event: usize,
}

impl Decoder {
    pub fn new(max_event: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            max_event,
        }
    }

    /// Feeds bytes; returns the complete events they finish. Errors when an event exceeds the limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, String> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end + sep).collect();
            if let Some(e) = parse_event(&raw[..end]) {
                events.push(e);
            }
        }
        if self.buf.len() > self.max_event {
            return Err(format!("an SSE event exceeds {} bytes", self.max_event));
        }
        Ok(events)
    }
}

fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i..].starts_with(b"\n\n") {
            return Some((i, 2));
        }
        if buf[i..].starts_with(b"\r\n\r\n") {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

fn parse_event(raw: &[u8]) -> Option<Event> {
    let mut event = None;
    let mut data: Vec<u8> = Vec::new();
    let mut has_data = false;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b':' {
            continue;
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
                if has_data {
                    data.push(b'\n');
                }
                data.extend_from_slice(value);
                has_data = true;
            }
            b"event" => event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
    has_data.then_some(Event { event, data })
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
}
