//! Closing: client- and server-initiated closes with codes and reasons end
//! cleanly on both sides, and a peer's protocol violation ends with the
//! right close code on the wire and the right error for the application.

use std::sync::mpsc;
use std::time::Duration;

use wscore::{CloseCode, Config, Error, ProtocolError, UsageError};

use crate::harness::{self, Adapter, Fail, Msg, Ws, on_thread};
use crate::raw::{self, BINARY, CLOSE, FIN, Raw, TEXT};

pub(crate) async fn client_closes_with_code_and_reason<A: Adapter>() {
    let (addr, server) = harness::server::<A, _, _>(Config::default(), harness::echo);
    let mut ws = A::connect(addr, Config::default()).await.unwrap();
    let message = Msg::Text("one".into());
    ws.send(&message).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(message.clone()));

    ws.close(CloseCode(4001), "client says bye").await.unwrap();
    let closed = ws.connection().closed().unwrap();
    assert!(closed.clean && closed.error.is_none(), "{closed:?}");
    // The server answered with our code, as RFC 6455 §5.5.1 suggests.
    assert_eq!(closed.code, CloseCode(4001));
    assert!(ws.connection().is_finished());
    // Nothing more may be sent, and the caller is told it is their mistake.
    assert_eq!(ws.send(&message).await, Err(Fail::Ws(Error::Usage(UsageError::Closing))));

    let ending = server.await;
    ending.assert_clean(4001, "client says bye");
    assert_eq!(ending.messages, [message]);
}

pub(crate) async fn server_closes_with_code_and_reason<A: Adapter>() {
    let (addr, server) = harness::server::<A, _, _>(Config::default(), |mut ws: A::Ws| async move {
        ws.send(&Msg::Binary(vec![1, 2, 3])).await.unwrap();
        let result = ws.close(CloseCode(4002), "server says bye").await;
        (result, ws.connection().closed().cloned())
    });
    let ws = A::connect(addr, Config::default()).await.unwrap();
    // The message sent before the close still arrives, then the clean end.
    let ending = harness::drain(ws).await;
    ending.assert_clean(4002, "server says bye");
    assert_eq!(ending.messages, [Msg::Binary(vec![1, 2, 3])]);

    let (result, closed) = server.await;
    assert_eq!(result, Ok(()));
    let closed = closed.unwrap();
    assert!(closed.clean && closed.code == CloseCode(4002), "{closed:?}");
}

/// A frame a client must not send, the code the server must answer it
/// with, and the error its application must see.
struct Violation {
    name: &'static str,
    frame: Vec<u8>,
    code: u16,
    error: ProtocolError,
}

fn client_violations() -> Vec<Violation> {
    let masked = |first, payload: &[u8]| raw::encode(first, payload, Some([1, 2, 3, 4]));
    vec![
        Violation {
            name: "unmasked client frame",
            frame: raw::encode(FIN | TEXT, b"no mask", None),
            code: 1002,
            error: ProtocolError::UnmaskedFrame,
        },
        Violation {
            name: "text that is not UTF-8",
            frame: masked(FIN | TEXT, &[b'o', b'k', 0xff, 0xfe]),
            code: 1007,
            error: ProtocolError::InvalidUtf8,
        },
        Violation {
            name: "a message over max_message_size",
            frame: masked(FIN | BINARY, &[0; 2048]),
            code: 1009,
            error: ProtocolError::MessageTooLarge,
        },
        Violation {
            name: "a reserved opcode",
            frame: masked(FIN | 0x3, b""),
            code: 1002,
            error: ProtocolError::ReservedOpcode(0x3),
        },
    ]
}

pub(crate) async fn protocol_violations_close_with_the_right_code<A: Adapter>() {
    for violation in client_violations() {
        let Violation { name, frame, code, error } = violation;
        let mut config = Config::default();
        config.max_message_size = 1024;
        let (listener, addr) = harness::listen();
        let server = A::spawn(async move { harness::drain(A::accept(listener, config).await.unwrap()).await });
        on_thread(move || {
            let mut raw = Raw::connect(addr);
            raw.send_bytes(&frame);
            let close = raw.frame();
            assert_eq!((close.opcode, close.close_code()), (CLOSE, Some(code)), "{name}: {close:?}");
            assert_eq!(close.close_reason(), error.reason(), "{name}");
            // We answer and are done; the server then closes too.
            raw.send_close(code, "");
            raw.shutdown_write();
            raw.expect_eof();
        })
        .await;
        let ending = server.await;
        assert_eq!(ending.result, Err(Fail::Ws(Error::Protocol(error))), "{name}");
        assert!(ending.messages.is_empty(), "{name}: {:?}", ending.messages);
        let closed = ending.closed.unwrap();
        assert_eq!((closed.code, closed.clean), (CloseCode(code), false), "{name}: {closed:?}");
    }

    // And the other way: a server that masks its frames.
    let (listener, addr) = harness::listen();
    let peer = on_thread(move || {
        let mut raw = Raw::accept(listener);
        raw.send_bytes(&raw::encode(FIN | TEXT, b"masked", Some([9, 9, 9, 9])));
        let close = raw.frame();
        assert_eq!((close.opcode, close.close_code()), (CLOSE, Some(1002)), "{close:?}");
        raw.send_close(1002, "");
        // Dropping the socket: the server closes TCP first.
    });
    let ws = A::connect(addr, Config::default()).await.unwrap();
    let ending = harness::drain(ws).await;
    assert_eq!(ending.result, Err(Fail::Ws(Error::Protocol(ProtocolError::MaskedFrame))));
    peer.await;
}

pub(crate) async fn failure_half_closes_at_once<A: Adapter>() {
    // A close timeout far longer than the raw peer waits: the end of the
    // stream it expects must come from the half-close, not the timeout.
    let mut config = Config::default();
    config.close_timeout = Duration::from_secs(120);
    let (listener, addr) = harness::listen();
    let server = A::spawn(async move { harness::drain(A::accept(listener, config).await.unwrap()).await });
    on_thread(move || {
        let mut raw = Raw::connect(addr);
        raw.send_bytes(&raw::encode(FIN | TEXT, b"no mask", None));
        let close = raw.frame();
        assert_eq!(close.close_code(), Some(1002), "{close:?}");
        // Without answering: the server sent its last bytes and says so
        // with a half-close (RFC 6455 §7.1.1 has the server close first).
        raw.expect_eof();
    })
    .await;
    assert_eq!(server.await.result, Err(Fail::Ws(Error::Protocol(ProtocolError::UnmaskedFrame))));
}

/// After failing the connection, the server lingers, reading and
/// discarding, until the peer's answering close frame (or EOF, or the close
/// timeout): the answer alone must end it, while the peer keeps its socket
/// open as a client waiting for the server to close first would.
async fn lingering_ends_at_the_close_answer<A: Adapter>(violation: Vec<u8>) {
    let mut config = Config::default();
    config.close_timeout = Duration::from_secs(120);
    let (listener, addr) = harness::listen();
    let (finished, wait) = mpsc::channel::<()>();
    let server = A::spawn(async move {
        let ending = harness::drain(A::accept(listener, config).await.unwrap()).await;
        // The peer may have given up waiting; its verdict says so.
        let _ = finished.send(());
        ending
    });
    let peer = on_thread(move || {
        let mut raw = Raw::connect(addr);
        raw.send_bytes(&violation);
        let close = raw.frame();
        assert_eq!(close.opcode, CLOSE, "{close:?}");
        raw.send_close(close.close_code().unwrap(), "");
        // Keep the socket open until the server is done, or give up (and
        // let it go) after a while.
        wait.recv_timeout(Duration::from_secs(20)).is_ok()
    });
    let ending = server.await;
    assert!(matches!(ending.result, Err(Fail::Ws(Error::Protocol(_)))), "{ending:?}");
    assert!(peer.await, "the server kept lingering after the peer's close answer, until the peer closed");
}

pub(crate) async fn lingering_ends_at_the_close_answer_after_a_payload_violation<A: Adapter>() {
    lingering_ends_at_the_close_answer::<A>(raw::encode(FIN | TEXT, b"no mask", None)).await;
}

pub(crate) async fn lingering_ends_at_the_close_answer_after_a_header_violation<A: Adapter>() {
    // A reserved opcode, in a header whose length is still well-formed.
    lingering_ends_at_the_close_answer::<A>(raw::encode(FIN | 0x3, b"", Some([1, 2, 3, 4]))).await;
}
