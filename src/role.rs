//! The two ends of a WebSocket connection.

/// Which end of the connection this is. It decides the handshake side and
/// the masking direction (clients mask, servers must not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the upgrade request; masks every frame it sends.
    Client,
    /// The end that answered it; requires masked frames from the client.
    Server,
}
