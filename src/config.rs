//! Every limit and timer of a connection, with its default and the reason for it.

use core::time::Duration;

use crate::error::UsageError;

/// Settings for one [`Connection`](crate::Connection).
///
/// Build one from [`Config::default()`] and change the fields you need; the
/// connection checks them when it is created.
///
/// ```
/// let mut config = wscore::Config::default();
/// config.max_message_size = 1 << 20;
/// config.ping_interval = Some(core::time::Duration::from_secs(20));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted, checked from the header before
    /// any of the payload is buffered (close 1009). Default 16 MiB, the
    /// same as tungstenite, so peers that send whole messages as one frame
    /// (Autobahn 9.1.6 sends 16 MiB) interoperate.
    pub max_frame_size: usize,
    /// The largest message accepted, summed over its fragments and checked
    /// as each frame header arrives (close 1009). Default 64 MiB. This is
    /// the memory one connection may hold for a message in whole-message
    /// mode; lower it for servers with many connections.
    pub max_message_size: usize,
    /// The most frames one message may be split into (close 1009). Default
    /// 131072: enough for Autobahn's 4 MiB in 64-byte fragments, while
    /// bounding the per-message work a peer can cause with empty fragments.
    pub max_fragments: usize,
    /// The largest opening handshake (request or response head) accepted.
    /// Default 16 KiB, the same bound h11 uses for an incomplete event;
    /// a server answers a larger head with 431.
    pub max_handshake_size: usize,
    /// The most header fields in a handshake. Default 64; a server answers
    /// more with 431.
    pub max_headers: usize,
    /// Outgoing data frames carry at most this much payload; longer
    /// messages are split into fragments. Default 1 MiB.
    pub max_send_frame_size: usize,
    /// Sending a message fails with [`Error::WriteBufferFull`](crate::Error::WriteBufferFull)
    /// while this many bytes or more wait to be transmitted, so a peer that
    /// never reads cannot make the connection buffer without bound: at most
    /// this plus one message is ever queued. Automatic pongs are held back
    /// (only the latest) while the buffer is this full. Default 4 MiB.
    pub write_buffer_high_water: usize,
    /// At most this many received bytes wait unprocessed, behind an event
    /// the caller has not taken yet, say:
    /// [`Connection::receive`](crate::Connection::receive) takes only what
    /// fits and [`Connection::wants_read`](crate::Connection::wants_read)
    /// turns false, so a peer cannot make the connection buffer without
    /// bound however much it sends. The frame being received is bounded
    /// separately (`max_frame_size`); one delivered whole has room set aside
    /// for it when its header arrives, so it is read without the buffer
    /// growing and being copied, up to 16 × this (1 MiB by default), room
    /// that is only filled as the bytes come. Default 64 KiB: several socket
    /// reads, small next to the frame limit. At least 1 KiB.
    pub max_unprocessed_input: usize,
    /// Automatic pongs waiting to be transmitted. When more pings arrive
    /// before they go out, the newest replaces the last queued pong (RFC
    /// 6455 §5.5.3 lets an endpoint answer only the most recent ping), so a
    /// peer that pings without reading costs at most this many small frames.
    /// Default 16: a burst of pings each gets its own pong, as Autobahn 2.10
    /// expects. At least 1.
    pub max_queued_pongs: usize,
    /// Deliver messages that begin from the start as
    /// [`Event::Chunk`](crate::Event::Chunk)s as they arrive instead of whole
    /// [`Event::Message`](crate::Event::Message)s; change it per message with
    /// [`Connection::set_streaming`](crate::Connection::set_streaming).
    /// Streaming never holds more than one read's worth of payload, so
    /// `max_message_size` only applies to whole messages. Default `false`.
    pub streaming: bool,
    /// Send a ping after this long without receiving anything. Default off.
    pub ping_interval: Option<Duration>,
    /// Fail the connection (close 1001) after this long without receiving
    /// anything; pair it with `ping_interval` so a live peer has something
    /// to answer (it must then be longer than `ping_interval`). Default off.
    pub idle_timeout: Option<Duration>,
    /// After sending a close frame, wait this long for the peer's; on a
    /// client, also how long to wait for the server to close the TCP
    /// connection after the closing handshake (RFC 6455 §7.1.1). Default 5 s.
    pub close_timeout: Duration,
    /// Fail a connection whose opening handshake takes longer than this,
    /// so slow or silent peers cannot hold server resources. Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// Receive and send buffers keep up to this much capacity when they
    /// have been drained, so small request/response traffic does not
    /// allocate per message. The handshake's buffers are always freed.
    /// Default 4096. With a [`buffer_release_delay`](Self::buffer_release_delay)
    /// (the default) even these are freed once the connection goes quiet,
    /// so an idle connection holds no buffer.
    pub retained_buffer_capacity: usize,
    /// How long a connection must go without draining a buffer before
    /// [`Connection::handle_timeout`](crate::Connection::handle_timeout)
    /// frees its drained buffers, whatever their size, and idle
    /// compression state (the deadline is part of `poll_timeout`). While
    /// messages flow, drained buffers of any size are kept for reuse, and
    /// the timer fires at most once per delay. `None` frees buffers larger
    /// than `retained_buffer_capacity` as soon as they drain and keeps the
    /// smaller ones for good: no timer, an allocation per large read or
    /// batch. Default 1 s: an idle connection is back to its bare size
    /// within two seconds.
    pub buffer_release_delay: Option<Duration>,
    /// permessage-deflate (RFC 7692): `Some` to offer it (client) or accept
    /// it when offered (server). Default `None`: compression costs CPU and,
    /// with context takeover, about 380 KB per connection (see
    /// [`DeflateConfig`](crate::deflate::DeflateConfig)).
    pub deflate: Option<crate::deflate::DeflateConfig>,
    /// Fills a buffer with unpredictable bytes, for a client's
    /// `Sec-WebSocket-Key` and for seeding its mask generator. With the
    /// `std` feature the default reads the operating system's source;
    /// without it there is no default and a client needs one.
    pub entropy: Option<fn(&mut [u8])>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 1 << 17,
            max_handshake_size: 16 << 10,
            max_headers: 64,
            max_send_frame_size: 1 << 20,
            write_buffer_high_water: 4 << 20,
            max_unprocessed_input: 64 << 10,
            max_queued_pongs: 16,
            streaming: false,
            ping_interval: None,
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
            handshake_timeout: Some(Duration::from_secs(10)),
            retained_buffer_capacity: 4096,
            buffer_release_delay: Some(Duration::from_secs(1)),
            deflate: None,
            entropy: default_entropy(),
        }
    }
}

impl Config {
    pub(crate) fn validate(&self) -> Result<(), UsageError> {
        let check = |ok: bool, what| if ok { Ok(()) } else { Err(UsageError::InvalidConfig(what)) };
        check(self.max_frame_size > 0, "max_frame_size must be positive")?;
        check(self.max_message_size > 0, "max_message_size must be positive")?;
        check(self.max_fragments > 0, "max_fragments must be positive")?;
        check(self.max_send_frame_size > 0, "max_send_frame_size must be positive")?;
        // Zero would refuse every message and every pong.
        check(self.write_buffer_high_water > 0, "write_buffer_high_water must be positive")?;
        check(self.max_handshake_size >= 64, "max_handshake_size must be at least 64")?;
        check(self.max_headers >= 4, "max_headers must be at least 4")?;
        check(self.ping_interval != Some(Duration::ZERO), "ping_interval must be positive")?;
        check(self.idle_timeout != Some(Duration::ZERO), "idle_timeout must be positive")?;
        check(self.max_unprocessed_input >= 1024, "max_unprocessed_input must be at least 1024")?;
        check(self.max_queued_pongs >= 1, "max_queued_pongs must be at least 1")?;
        // A peer can only prove it is alive by answering a ping sent before
        // the idle deadline.
        let heartbeat_fits = match (self.ping_interval, self.idle_timeout) {
            (Some(ping), Some(idle)) => idle > ping,
            _ => true,
        };
        check(heartbeat_fits, "idle_timeout must be longer than ping_interval")?;
        match &self.deflate {
            Some(deflate) => deflate.validate().map_err(UsageError::InvalidConfig),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "std")]
fn default_entropy() -> Option<fn(&mut [u8])> {
    fn os(dest: &mut [u8]) {
        // The OS source failing is not recoverable and not the peer's doing;
        // continuing with predictable masks would be worse than stopping.
        getrandom::fill(dest).expect("the operating system's random source failed");
    }
    Some(os)
}

#[cfg(not(feature = "std"))]
fn default_entropy() -> Option<fn(&mut [u8])> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Config)) -> Result<(), UsageError> {
        let mut config = Config::default();
        f(&mut config);
        config.validate()
    }

    #[test]
    fn the_default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn an_idle_timeout_no_ping_can_beat_is_refused() {
        let secs = |s| Some(Duration::from_secs(s));
        let refused = Err(UsageError::InvalidConfig("idle_timeout must be longer than ping_interval"));
        for (ping, idle) in [(10, 10), (10, 5)] {
            assert_eq!(
                with(|c| {
                    c.ping_interval = secs(ping);
                    c.idle_timeout = secs(idle);
                }),
                refused
            );
        }
        assert_eq!(
            with(|c| {
                c.ping_interval = secs(10);
                c.idle_timeout = secs(11);
            }),
            Ok(())
        );
        assert_eq!(with(|c| c.idle_timeout = secs(1)), Ok(()), "an idle timeout alone is fine");
    }

    #[test]
    fn input_and_pong_bounds_have_floors() {
        assert!(with(|c| c.max_unprocessed_input = 1023).is_err());
        assert!(with(|c| c.max_unprocessed_input = 1024).is_ok());
        assert!(with(|c| c.max_queued_pongs = 0).is_err());
        assert!(with(|c| c.max_queued_pongs = 1).is_ok());
    }
}
