//! The receive side's byte buffers: a `Vec<u8>`, or with the `bytes`
//! feature a `BytesMut`, so that received messages can be split off as
//! shared [`Bytes`](bytes::Bytes) without a copy. Both offer the same
//! vector-like methods the receive half uses. Also when both halves free
//! their drained buffers ([`Release`]).

#[cfg(feature = "bytes")]
pub(crate) type Buf = bytes::BytesMut;

#[cfg(not(feature = "bytes"))]
pub(crate) type Buf = alloc::vec::Vec<u8>;

use core::time::Duration;

use crate::config::Config;

/// When a half frees its drained buffers. While messages flow, buffers up
/// to [`Config::retained_buffer_capacity`] are kept for reuse (larger ones
/// too when a [`Config::buffer_release_delay`] is set); once a whole delay
/// passes with no buffer drained, `handle_timeout` frees them all, so an
/// idle connection holds no buffer.
///
/// The deadline is set at the first drain and not moved by later ones: a
/// busy connection wakes once per delay to see it was busy, rather than
/// have its timer reset on every message.
#[derive(Debug, Default)]
pub(crate) struct Release {
    /// When to look whether the half went quiet.
    pub(crate) at: Option<Duration>,
    /// Whether a buffer drained again after the deadline was set.
    busy: bool,
}

impl Release {
    /// A buffer of `capacity` bytes is empty at `clock`; `used` says it
    /// held something since it was last found empty (a buffer merely found
    /// empty again is no sign of traffic, or polling an idle connection
    /// would keep it busy). Returns whether the buffer goes now rather
    /// than stay for reuse.
    pub(crate) fn drained(
        &mut self,
        config: &Config,
        capacity: usize,
        used: bool,
        clock: impl FnOnce() -> Duration,
    ) -> bool {
        if capacity == 0 {
            return false;
        }
        match config.buffer_release_delay {
            None => capacity > config.retained_buffer_capacity,
            Some(_) if !used => false,
            Some(delay) => {
                if self.at.is_none() {
                    self.at = Some(clock().saturating_add(delay));
                } else {
                    self.busy = true;
                }
                false
            }
        }
    }

    /// Whether the deadline has passed at `now`.
    pub(crate) fn due(&self, now: Duration) -> bool {
        self.at.is_some_and(|t| now >= t)
    }

    /// The deadline passed at `now`: whether the half was quiet for a whole
    /// delay (free the buffers) or not (look again one delay later).
    pub(crate) fn quiet(&mut self, config: &Config, now: Duration) -> bool {
        match (core::mem::take(&mut self.busy), config.buffer_release_delay) {
            (true, Some(delay)) => {
                self.at = Some(now.saturating_add(delay));
                false
            }
            _ => {
                self.at = None;
                true
            }
        }
    }
}
