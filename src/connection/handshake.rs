//! The opening handshake as the connection runs it: the head read from the
//! receive buffer, the request or response written to the send half, and
//! the answers to a server application's decision. The HTTP rules
//! themselves live in [`crate::handshake`].

use alloc::boxed::Box;

use base64::Engine as _;

use super::recv::Ready;
use super::{Connection, Send};
use crate::config::Config;
use crate::deflate::DeflateParams;
use crate::error::{Error, HandshakeError, Timeout, UsageError};
use crate::handshake::server::{write_error_response, write_handshake_error};
use crate::handshake::{Accept, ClientHandshake, HeadScanner, Reject, Request, Response, accept_key};
use crate::role::Role;

/// What the handshake is waiting for.
#[derive(Debug)]
enum Side {
    /// Server: the request, then (once it came) the application's answer.
    Server { request: Option<Box<Request>> },
    /// Client: the server's response to our request with this key.
    Client { handshake: ClientHandshake, accept: [u8; 28] },
    /// Client: the server refused with this response; its body (of this
    /// many bytes) follows the head.
    Refused { response: Box<Response>, body: usize },
}

/// A handshake in progress.
#[derive(Debug)]
pub(super) struct Handshake {
    scanner: HeadScanner,
    side: Side,
}

impl Handshake {
    pub(super) fn server() -> Self {
        Self { scanner: HeadScanner::default(), side: Side::Server { request: None } }
    }

    /// A client's handshake: the request is queued on `send` at once.
    pub(super) fn client(handshake: ClientHandshake, entropy: fn(&mut [u8]), config: &Config, send: &mut Send) -> Self {
        let mut nonce = [0u8; 16];
        entropy(&mut nonce);
        let mut key = [0u8; 24];
        let written = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut key).unwrap_or(0);
        debug_assert_eq!(written, 24);
        let offer = config.deflate.as_ref().map(crate::deflate::negotiation::client_offer);
        send.handshake_buf(|buf| handshake.write_request(&key, offer.as_deref(), buf));
        Self { scanner: HeadScanner::default(), side: Side::Client { handshake, accept: accept_key(&key) } }
    }

    /// Server: the request waiting for the application's answer.
    pub(super) fn request(&self) -> Option<&Request> {
        match &self.side {
            Side::Server { request } => request.as_deref(),
            Side::Client { .. } | Side::Refused { .. } => None,
        }
    }
}

/// Reads the handshake's head from the receive buffer.
pub(super) fn advance(conn: &mut Connection) -> Option<Ready> {
    let hs = conn.handshake.as_deref_mut()?;
    if hs.request().is_some() {
        // Waiting for `accept` or `reject`.
        return None;
    }
    if let Side::Refused { body, .. } = hs.side {
        return refused(conn, body);
    }
    let recv = &mut conn.recv;
    let config = &conn.config;
    let data = &recv.rx[recv.start..recv.end];
    let found = hs.scanner.find_end(data);
    conn.handshake_bytes_examined = hs.scanner.work();
    let len = match found {
        Some(len) if len <= config.max_handshake_size => len,
        Some(_) => return fail(conn, HandshakeError::TooLarge),
        None if data.len() > config.max_handshake_size => return fail(conn, HandshakeError::TooLarge),
        None if conn.shared.eof => return fail(conn, HandshakeError::Incomplete),
        None => return None,
    };
    let head = &data[..len];
    conn.handshake_bytes_examined += len as u64;
    let result = match &mut hs.side {
        Side::Server { request } => Request::parse(head, config.max_headers).map(|r| {
            *request = Some(Box::new(r));
            Ready::Request
        }),
        Side::Client { handshake, accept } => match Response::parse(head, config.max_headers) {
            Err(e) => Err(e),
            Ok(mut response) => match handshake.check_parsed_response(&mut response, accept, config.deflate.as_ref()) {
                Ok(()) => {
                    conn.response = Some(Box::new(response));
                    Ok(Ready::Connected)
                }
                Err(HandshakeError::Status(_)) => {
                    // Keep the refusal, with its body (up to Content-Length,
                    // bounded like the head), for the application.
                    let body = response
                        .header("content-length")
                        .and_then(|v| core::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
                        .unwrap_or(0)
                        .min(config.max_handshake_size);
                    hs.side = Side::Refused { response: Box::new(response), body };
                    Ok(Ready::Rejected)
                }
                Err(e) => Err(e),
            },
        },
        Side::Refused { .. } => Ok(Ready::Rejected),
    };
    recv.start += len;
    // The handshake's receive buffer is not kept for the connection's life.
    if recv.start == recv.end {
        (recv.start, recv.end) = (0, 0);
        recv.rx = Default::default();
    }
    match result {
        Ok(Ready::Rejected) => {
            let Some(Side::Refused { body, .. }) = conn.handshake.as_deref().map(|hs| &hs.side) else { return None };
            let body = *body;
            refused(conn, body)
        }
        Ok(Ready::Connected) => {
            conn.handshake = None;
            let response = conn.response.as_deref()?;
            conn.protocol = response.protocol().map(Into::into);
            if let (Some(params), Some(_)) = (response.deflate().copied(), conn.config.deflate.as_ref()) {
                conn.start_deflate(params);
            }
            conn.shared.open = true;
            conn.shared.timers.handshake = None;
            Some(Ready::Connected)
        }
        Ok(ready) => Some(ready),
        Err(e) => fail(conn, e),
    }
}

/// The server refused the upgrade: once `body` bytes of its response's body
/// are in (or the transport ended), the response is handed out in
/// `Rejected` and the connection fails with its status.
fn refused(conn: &mut Connection, body: usize) -> Option<Ready> {
    let recv = &mut conn.recv;
    let available = recv.end - recv.start;
    if available < body && !conn.shared.eof {
        return None;
    }
    let take = available.min(body);
    let bytes = recv.rx[recv.start..recv.start + take].to_vec();
    recv.start += take;
    let Some(Side::Refused { mut response, .. }) = conn.handshake.take().map(|hs| hs.side) else { return None };
    response.set_body(bytes);
    let status = response.status();
    conn.response = Some(response);
    conn.shared.fail(HandshakeError::Status(status).into(), "");
    Some(Ready::Rejected)
}

/// Fails the handshake: a server answers with the error's HTTP status and
/// lingers; then `Closed` is the next event.
fn fail(conn: &mut Connection, error: HandshakeError) -> Option<Ready> {
    conn.handshake = None;
    match conn.shared.role {
        Role::Server if error != HandshakeError::Incomplete => {
            conn.send.handshake_buf(|buf| write_handshake_error(error, buf));
            conn.shared.fail_handshake_answered(error.into());
        }
        _ => conn.shared.fail(error.into(), ""),
    }
    conn.recv.advance(&conn.config, &mut &mut conn.shared)
}

/// Server: answers the pending request with a 101; returns the agreed
/// permessage-deflate parameters, if any.
pub(super) fn accept(conn: &mut Connection, accept: &Accept<'_>) -> Result<Option<DeflateParams>, Error> {
    let Some(request) = conn.handshake.as_deref().and_then(Handshake::request) else {
        return Err(UsageError::NoPendingRequest.into());
    };
    let mut result = Ok((None, None));
    let deflate = conn.config.deflate.as_ref();
    conn.send.handshake_buf(|buf| {
        result = accept
            .write_response(request, deflate, buf)
            .map(|answer| (answer.deflate().copied(), answer.protocol().map(Box::<str>::from)));
    });
    let (params, protocol) = result?;
    conn.protocol = protocol;
    conn.handshake = None;
    conn.shared.open = true;
    conn.shared.timers.handshake = None;
    Ok(params)
}

/// Server: answers the pending request with an HTTP error.
pub(super) fn reject(conn: &mut Connection, reject: &Reject<'_>) -> Result<(), Error> {
    if conn.request().is_none() {
        return Err(UsageError::NoPendingRequest.into());
    }
    let mut result = Ok(());
    conn.send.handshake_buf(|buf| result = reject.write_response(buf));
    result?;
    conn.handshake = None;
    conn.shared.fail_handshake_answered(HandshakeError::Rejected(reject.status()).into());
    Ok(())
}

impl Connection {
    /// The handshake took longer than [`Config::handshake_timeout`]: the
    /// client was too slow (408), or our application was (503).
    pub(super) fn handshake_timed_out(&mut self) {
        let Some(hs) = self.handshake.take() else { return };
        if let Side::Server { request } = &hs.side {
            let status = if request.is_some() { 503 } else { 408 };
            self.send.handshake_buf(|buf| write_error_response(status, &[], b"handshake timeout\n", buf));
        }
        self.shared.fail(Error::Timeout(Timeout::Handshake), "");
    }
}
