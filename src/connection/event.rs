//! What a connection reports: its events (borrowed, and with the `bytes`
//! feature owned), how it ended, where it is in its life, and its counters.

use alloc::boxed::Box;

use crate::close::CloseCode;
use crate::error::Error;
use crate::frame::CloseFrame;
use crate::handshake::{Request, Response};
use crate::message::{Message, MessageKind};

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// The opening handshake is in progress.
    Handshake,
    /// Messages flow both ways.
    Open,
    /// A close frame was sent or received and the closing handshake is not
    /// over: our close frame waits to be transmitted, or the peer's to
    /// arrive.
    Closing,
    /// Both close frames were exchanged, or the connection failed; see
    /// [`Connection::is_finished`](crate::Connection::is_finished) for when
    /// to close the transport.
    Closed,
}

/// Something that happened on the connection, returned by
/// [`Connection::poll_event`](crate::Connection::poll_event). Payloads borrow
/// from the connection's buffers and stay valid until the next call that
/// changes it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Server: a valid upgrade request arrived. Answer it with
    /// [`Connection::accept`](crate::Connection::accept) or
    /// [`Connection::reject`](crate::Connection::reject); until then no
    /// further events are produced.
    Request(&'a Request),
    /// Client: the server accepted the upgrade; the connection is open. The
    /// response is handed over: the connection keeps no copy.
    Connected(Box<Response>),
    /// Client: the server answered the upgrade request with another status
    /// than 101. Its status, headers (`Retry-After`, say) and body (up to
    /// `Content-Length`, at most [`Config::max_handshake_size`](crate::Config::max_handshake_size))
    /// are handed over; [`Event::Closed`] follows.
    Rejected(Box<Response>),
    /// A whole message, bounded by
    /// [`Config::max_message_size`](crate::Config::max_message_size).
    Message(Message<'a>),
    /// A piece of a message as it arrived (when streaming, see
    /// [`Connection::set_streaming`](crate::Connection::set_streaming)).
    Chunk(Chunk<'a>),
    /// A ping arrived; its pong is owed and goes out with the next
    /// transmission.
    Ping(&'a [u8]),
    /// A pong arrived.
    Pong(&'a [u8]),
    /// The peer sent a close frame; ours is owed in answer if we had not
    /// sent one. [`Event::Closed`] follows once ours has been transmitted.
    Close(CloseFrame<'a>),
    /// The connection is closed; always the last event. See [`Closed`].
    Closed(Closed),
}

impl Event<'_> {
    /// The event's kind, as [`Connection::peek_event`](crate::Connection::peek_event) reports it.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Request(_) => EventKind::Request,
            Self::Connected(_) => EventKind::Connected,
            Self::Rejected(_) => EventKind::Rejected,
            Self::Message(_) => EventKind::Message,
            Self::Chunk(_) => EventKind::Chunk,
            Self::Ping(_) => EventKind::Ping,
            Self::Pong(_) => EventKind::Pong,
            Self::Close(_) => EventKind::Close,
            Self::Closed(_) => EventKind::Closed,
        }
    }
}

/// The kind of an event, from [`Connection::peek_event`](crate::Connection::peek_event)
/// or [`Event::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`Event::Request`].
    Request,
    /// [`Event::Connected`].
    Connected,
    /// [`Event::Rejected`].
    Rejected,
    /// [`Event::Message`].
    Message,
    /// [`Event::Chunk`].
    Chunk,
    /// [`Event::Ping`].
    Ping,
    /// [`Event::Pong`].
    Pong,
    /// [`Event::Close`].
    Close,
    /// [`Event::Closed`].
    Closed,
}

/// A piece of a message, when streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chunk<'a> {
    /// The kind of the message this piece belongs to.
    pub kind: MessageKind,
    /// The bytes. For text the message as a whole is validated UTF-8, but a
    /// piece may end inside a character.
    pub data: &'a [u8],
    /// Whether this is the last piece of the message.
    pub fin: bool,
}

impl<'a> Chunk<'a> {
    /// A whole message as its single, final chunk.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn whole(message: Message<'a>) -> Self {
        Self { kind: message.kind(), data: message.as_bytes(), fin: true }
    }
}

/// How a connection ended, in [`Event::Closed`] and from
/// [`Connection::closed`](crate::Connection::closed).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closed {
    /// The code of the first close frame received (1005 if it had none);
    /// else the code we sent when we failed the connection; 1006 when the
    /// transport ended without a close frame.
    pub code: CloseCode,
    /// The reason that came with `code`: the peer's, or ours when we failed
    /// the connection (empty for 1006).
    pub reason: Box<str>,
    /// Whether both close frames were exchanged: the peer's arrived and ours
    /// was handed out for transmission.
    pub clean: bool,
    /// What went wrong, if anything. Every action after a failure returns
    /// this same error.
    pub error: Option<Error>,
}

impl Closed {
    pub(crate) fn new(code: CloseCode, reason: Box<str>, clean: bool, error: Option<Error>) -> Self {
        Self { code, reason, clean, error }
    }
}

/// Counters of what a connection has done, from
/// [`Connection::stats`](crate::Connection::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes handed to the connection as received.
    pub bytes_received: u64,
    /// Bytes the caller reported as transmitted.
    pub bytes_transmitted: u64,
    /// Frame headers decoded.
    pub frames_received: u64,
    /// Whole messages received (the last chunk of each when streaming).
    pub messages_received: u64,
    /// Bytes the handshake parser examined: the search for the end of the
    /// head plus the parse of it. Linear in the head's length however it
    /// was split across reads, which is what bounds a slowly trickled head.
    pub handshake_bytes_examined: u64,
}

#[cfg(feature = "bytes")]
pub use owned::{OwnedChunk, OwnedEvent};

#[cfg(feature = "bytes")]
mod owned {
    use alloc::boxed::Box;

    use super::{Closed, EventKind};
    use crate::close::CloseCode;
    use crate::handshake::{Request, Response};
    use crate::message::{MessageKind, OwnedMessage, Payload, Utf8Payload};

    /// An event whose payloads are owned, from
    /// [`Connection::poll_owned`](crate::Connection::poll_owned): messages
    /// are split off the receive buffer without a copy, so they can be kept,
    /// sent to another task or sent back with
    /// [`Connection::send_owned`](crate::Connection::send_owned).
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum OwnedEvent<'a> {
        /// Server: see [`Event::Request`](super::Event::Request).
        Request(&'a Request),
        /// Client: see [`Event::Connected`](super::Event::Connected).
        Connected(Box<Response>),
        /// Client: see [`Event::Rejected`](super::Event::Rejected).
        Rejected(Box<Response>),
        /// A whole message.
        Message(OwnedMessage),
        /// A piece of a message, when streaming.
        Chunk(OwnedChunk),
        /// A ping arrived; its pong is owed.
        Ping(Payload),
        /// A pong arrived.
        Pong(Payload),
        /// The peer's close frame: its code and reason.
        Close(CloseCode, Utf8Payload),
        /// The connection is closed; always the last event.
        Closed(Closed),
    }

    impl OwnedEvent<'_> {
        /// The event's kind.
        pub fn kind(&self) -> EventKind {
            match self {
                Self::Request(_) => EventKind::Request,
                Self::Connected(_) => EventKind::Connected,
                Self::Rejected(_) => EventKind::Rejected,
                Self::Message(_) => EventKind::Message,
                Self::Chunk(_) => EventKind::Chunk,
                Self::Ping(_) => EventKind::Ping,
                Self::Pong(_) => EventKind::Pong,
                Self::Close(..) => EventKind::Close,
                Self::Closed(_) => EventKind::Closed,
            }
        }
    }

    /// A piece of a message with an owned payload.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct OwnedChunk {
        /// The kind of the message this piece belongs to.
        pub kind: MessageKind,
        /// The bytes; for text, a piece may end inside a character.
        pub data: Payload,
        /// Whether this is the last piece of the message.
        pub fin: bool,
    }
}
