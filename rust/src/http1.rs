//! One HTTP/1.1 response read from a connection's bytes as they arrive (sans I/O), for
//! the dispatcher's result relay. Same rules as perago's Python head parser
//! (`perago/http1.py`): interim 1xx answers skipped; no body for 204/304; a chunked,
//! `Content-Length` or read-to-close body; `Connection: close` and HTTP/1.0 honoured.

/// Longest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest body accepted (a task handed back by update-v2 is a few KiB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The connection may carry another request (and nothing beyond this response arrived).
    pub reusable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    body_start: usize,
}

#[derive(Default)]
pub struct ResponseParser {
    buffer: Vec<u8>,
    head: Option<Head>,
    /// Some byte of an answer arrived (a reused connection that closes before that was stale).
    pub received: bool,
}

impl ResponseParser {
    /// Add bytes; the whole response once it is there, `None` while more are needed.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>, String> {
        if !data.is_empty() {
            self.received = true;
            self.buffer.extend_from_slice(data);
        }
        loop {
            let head = match self.head {
                Some(head) => head,
                None => match self.parse_head()? {
                    Some(head) if (100..200).contains(&head.status) => {
                        self.buffer.drain(..head.body_start);
                        continue;
                    }
                    Some(head) => {
                        self.head = Some(head);
                        head
                    }
                    None => return Ok(None),
                },
            };
            return self.body(head, false);
        }
    }

    /// The connection closed: the end of a read-to-close body, or an error.
    pub fn feed_eof(&mut self) -> Result<Response, String> {
        match self.head {
            Some(head) => self.body(head, true)?.ok_or_else(|| "connection closed mid-response".to_string()),
            None => Err("connection closed before a complete response head".to_string()),
        }
    }

    fn parse_head(&self) -> Result<Option<Head>, String> {
        let Some(end) = find(&self.buffer, b"\r\n\r\n") else {
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(format!("response head longer than {MAX_HEAD_BYTES} bytes"));
            }
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&self.buffer[..end]);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("malformed HTTP status line {:?}", truncate(status_line, 80)));
        }
        let status: u16 = code.parse().expect("three digits");
        let (mut length, mut chunked, mut connection) = (None, false, String::new());
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("malformed response header {:?}", truncate(line, 80)));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    let parsed = value.parse::<usize>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
                    match (parsed, length) {
                        (Some(n), None) => length = Some(n),
                        (Some(n), Some(m)) if n == m => {}
                        _ => return Err(format!("malformed Content-Length {:?}", truncate(value, 40))),
                    }
                }
                "transfer-encoding" => chunked |= value.to_ascii_lowercase().contains("chunked"),
                "connection" => {
                    connection.push(',');
                    connection.push_str(&value.to_ascii_lowercase());
                }
                _ => {}
            }
        }
        let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
        let keep_alive = !tokens.contains(&"close") && (version != "HTTP/1.0" || tokens.contains(&"keep-alive"));
        let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if let Some(length) = length {
            if length > MAX_BODY_BYTES {
                return Err(format!("response body of {length} bytes is over {MAX_BODY_BYTES}"));
            }
            Framing::Length(length)
        } else {
            Framing::Close
        };
        Ok(Some(Head { status, framing, keep_alive, body_start: end + 4 }))
    }

    fn body(&mut self, head: Head, eof: bool) -> Result<Option<Response>, String> {
        let rest = &self.buffer[head.body_start..];
        let (body, used) = match head.framing {
            Framing::Empty => (Vec::new(), 0),
            Framing::Length(length) if rest.len() >= length => (rest[..length].to_vec(), length),
            Framing::Length(_) => return Ok(None),
            Framing::Chunked => match dechunk(rest)? {
                Some(found) => found,
                None => return Ok(None),
            },
            Framing::Close if eof => (rest.to_vec(), rest.len()),
            Framing::Close if rest.len() > MAX_BODY_BYTES => {
                return Err(format!("response body over {MAX_BODY_BYTES} bytes"));
            }
            Framing::Close => return Ok(None),
        };
        let leftover = rest.len() > used;
        let reusable = head.keep_alive && head.framing != Framing::Close && !leftover && !eof;
        Ok(Some(Response { status: head.status, body, reusable }))
    }
}

/// A complete chunked body and the bytes it took, or `None` while incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let total = rest.len();
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else { return Ok(None) };
        let line = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("malformed chunk size {:?}", truncate(size_text, 20)))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailer lines up to an empty one.
            loop {
                let Some(end) = find(rest, b"\r\n") else { return Ok(None) };
                rest = &rest[end + 2..];
                if end == 0 {
                    return Ok(Some((body, total - rest.len())));
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(format!("response body over {MAX_BODY_BYTES} bytes"));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".to_string());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(parser: &mut ResponseParser, bytes: &[u8]) -> Response {
        parser.feed(bytes).unwrap().expect("complete")
    }

    #[test]
    fn content_length_body_split_at_every_byte() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"taskId\":1}\n";
        for split in 0..raw.len() {
            let mut parser = ResponseParser::default();
            assert_eq!(parser.feed(&raw[..split]).unwrap(), None, "split at {split}");
            let response = whole(&mut parser, &raw[split..]);
            assert_eq!(response, Response { status: 200, body: b"{\"taskId\":1}\n".to_vec(), reusable: true });
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 0..raw.len() {
            let mut parser = ResponseParser::default();
            assert_eq!(parser.feed(&raw[..split]).unwrap(), None, "split at {split}");
            assert_eq!(whole(&mut parser, &raw[split..]).body, b"abcdef");
        }
    }

    #[test]
    fn interim_answers_are_skipped_and_empty_statuses_have_no_body() {
        let mut parser = ResponseParser::default();
        let response = whole(&mut parser, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((response.status, response.body.len(), response.reusable), (204, 0, true));
    }

    #[test]
    fn close_delimited_and_connection_close_are_not_reusable() {
        let mut parser = ResponseParser::default();
        assert_eq!(parser.feed(b"HTTP/1.1 200 OK\r\n\r\nabc").unwrap(), None);
        assert_eq!(parser.feed_eof().unwrap(), Response { status: 200, body: b"abc".to_vec(), reusable: false });
        let mut parser = ResponseParser::default();
        let response = whole(&mut parser, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(!response.reusable);
        let mut parser = ResponseParser::default();
        assert!(!whole(&mut parser, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable);
        let mut parser = ResponseParser::default();
        assert!(whole(&mut parser, b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").reusable);
    }

    #[test]
    fn leftover_bytes_make_the_connection_unusable() {
        let mut parser = ResponseParser::default();
        assert!(!whole(&mut parser, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy").reusable);
    }

    #[test]
    fn malformed_answers_are_errors() {
        for raw in [
            &b"SMTP ready\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        ] {
            assert!(ResponseParser::default().feed(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        let mut parser = ResponseParser::default();
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").unwrap();
        assert!(parser.feed_eof().is_err());
        assert!(ResponseParser::default().feed_eof().is_err());
    }
}
