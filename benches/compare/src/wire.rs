//! The load generator's own WebSocket client code, kept minimal so that it
//! costs little next to the servers it measures: the opening handshake
//! with a fixed key, frames built (masked, and compressed when asked) once
//! before a run, and a parser for the server's unmasked frames that
//! reassembles fragments and inflates compressed messages.
//!
//! It uses no WebSocket library, so it favours none of them.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The RFC 6455 example key and its answer: every connection sends the
/// same key, which the servers cannot tell from a random one.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The opening handshake request; with `deflate` it offers
/// permessage-deflate with context takeover both ways and 15-bit windows
/// (the defaults, which every server here accepts as offered).
pub fn request(host: &str, deflate: bool) -> Vec<u8> {
    let extension = if deflate { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" };
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
    )
    .into_bytes()
}

/// Checks a response head (everything before the blank line): 101, the
/// right accept key, and permessage-deflate agreed exactly when offered.
pub fn check_response(head: &[u8], deflate: bool) -> io::Result<()> {
    let head = std::str::from_utf8(head).map_err(io::Error::other)?;
    let bad = |what: &str| Err(io::Error::other(format!("{what} in handshake response:\n{head}")));
    if !head.starts_with("HTTP/1.1 101") {
        return bad("no 101");
    }
    let lower = head.to_ascii_lowercase();
    let value = |name: &str| {
        lower.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
    };
    let accept_ok =
        head.lines().any(|l| l.to_ascii_lowercase().starts_with("sec-websocket-accept") && l.ends_with(ACCEPT));
    if !accept_ok {
        return bad("wrong Sec-WebSocket-Accept");
    }
    let agreed = value("sec-websocket-extensions").is_some_and(|v| v.contains("permessage-deflate"));
    if agreed != deflate {
        return bad(if deflate { "permessage-deflate not agreed" } else { "unexpected extension" });
    }
    Ok(())
}

/// The index just past the blank line that ends an HTTP head, if present.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A masked frame (FIN set) carrying `payload`, text or binary; with
/// `compress` the payload is deflated with a fresh context at level 1
/// (valid whatever context the server keeps) and RSV1 set.
pub fn client_frame(text: bool, payload: &[u8], compress: bool) -> Vec<u8> {
    let compressed;
    let payload = if compress {
        compressed = deflate(payload);
        &compressed[..]
    } else {
        payload
    };
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | if compress { 0x40 } else { 0 } | if text { 0x1 } else { 0x2 });
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    // A fixed, non-trivial key: the servers unmask whatever the key is.
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// `data` deflated as one permessage-deflate message: raw deflate, level
/// 1, sync flush, the 4-byte tail removed.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(1), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        out.reserve(data.len() / 2 + 64);
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).unwrap();
        if c.total_in() as usize == data.len() && out.ends_with(&[0, 0, 0xFF, 0xFF]) {
            break;
        }
    }
    out.truncate(out.len() - 4);
    out
}

/// A message read from the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    /// Text (opcode 1) or binary (2).
    pub text: bool,
    /// Whether it arrived compressed (RSV1).
    pub compressed: bool,
}

/// Reads the server's frames from a buffer: unmasked data frames, possibly
/// fragmented, possibly compressed (inflated with one context for the
/// connection, as permessage-deflate with context takeover needs).
pub struct Parser {
    message: Vec<u8>,
    started: Option<Received>,
    inflater: Option<Decompress>,
    inflated: Vec<u8>,
}

impl Parser {
    /// A parser; `deflate` when the connection agreed on permessage-deflate.
    pub fn new(deflate: bool) -> Self {
        Self {
            message: Vec::new(),
            started: None,
            inflater: deflate.then(|| Decompress::new(false)),
            inflated: Vec::new(),
        }
    }

    /// Parses one frame from the front of `buf`. `Ok(None)` if `buf` holds
    /// no complete frame; otherwise the bytes used and, if the frame ended
    /// a message, the message (its payload passed to `payload`).
    pub fn parse<T>(
        &mut self,
        buf: &[u8],
        payload: impl FnOnce(&Received, &[u8]) -> T,
    ) -> io::Result<Option<(usize, Option<T>)>> {
        let fail = |what: &str| Err(io::Error::other(what.to_owned()));
        if buf.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv1, opcode) = (buf[0] & 0x80 != 0, buf[0] & 0x40 != 0, buf[0] & 0x0F);
        if buf[1] & 0x80 != 0 {
            return fail("masked frame from the server");
        }
        let (len, head) = match buf[1] & 0x7F {
            126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
            127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return Ok(None),
            n => (n as usize, 2),
        };
        if buf.len() < head + len {
            return Ok(None);
        }
        let data = &buf[head..head + len];
        let used = head + len;
        match opcode {
            1 | 2 if self.started.is_none() => {
                let kind = Received { text: opcode == 1, compressed: rsv1 };
                if fin && !rsv1 {
                    // The common case: one frame, nothing to reassemble.
                    return Ok(Some((used, Some(payload(&kind, data)))));
                }
                self.message.clear();
                self.message.extend_from_slice(data);
                self.started = Some(kind);
            }
            0 if self.started.is_some() => self.message.extend_from_slice(data),
            9 | 10 => return Ok(Some((used, None))),
            8 => return fail("close frame from the server"),
            _ => return fail("unexpected opcode"),
        }
        if !fin {
            return Ok(Some((used, None)));
        }
        let kind = self.started.take().unwrap();
        if !kind.compressed {
            return Ok(Some((used, Some(payload(&kind, &self.message)))));
        }
        let Some(inflater) = self.inflater.as_mut() else {
            return fail("compressed frame without permessage-deflate");
        };
        self.message.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        self.inflated.clear();
        let start = inflater.total_in();
        loop {
            let consumed = (inflater.total_in() - start) as usize;
            if consumed == self.message.len() {
                break;
            }
            self.inflated.reserve(self.message.len() * 4 + 1024);
            inflater
                .decompress_vec(&self.message[consumed..], &mut self.inflated, FlushDecompress::Sync)
                .map_err(io::Error::other)?;
        }
        Ok(Some((used, Some(payload(&kind, &self.inflated)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflated_messages_inflate() {
        let text = crate::data::text(70_000).into_bytes();
        // A server frame: RSV1, text, 64-bit length, unmasked.
        let compressed = deflate(&text);
        assert!(compressed.len() < text.len() / 3);
        let mut frame = vec![0xC1, 127];
        frame.extend_from_slice(&(compressed.len() as u64).to_be_bytes());
        frame.extend_from_slice(&compressed);
        let mut parser = Parser::new(true);
        for _ in 0..2 {
            let (used, got) = parser.parse(&frame, |k, p| (k.text, p.to_vec())).unwrap().unwrap();
            assert_eq!(used, frame.len());
            assert_eq!(got, Some((true, text.clone())));
        }
        assert!(parser.parse(&frame[..frame.len() - 1], |_, _| ()).unwrap().is_none());
    }
}
