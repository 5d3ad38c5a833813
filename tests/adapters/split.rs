//! Split halves in two tasks (async adapters only; the blocking WebSocket
//! has no halves): the reader answers pings while the writer is idle, the
//! writer sees the error the reader hit, closing goes through the halves,
//! and both halves work at once and reunite.

use wscore::{CloseCode, Config, Error, ProtocolError, UsageError};

use crate::harness::{self, AsyncAdapter, AsyncWs, Fail, Msg, Res, WsReader, WsWriter, binary_of, on_thread};
use crate::raw::{self, FIN, PING, PONG, Raw, TEXT};

/// Receives on a reader half until the end.
async fn read_all<R: WsReader>(mut reader: R) -> (Vec<Msg>, Res<()>) {
    let mut messages = Vec::new();
    loop {
        match reader.recv().await {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => return (messages, Ok(())),
            Err(e) => return (messages, Err(e)),
        }
    }
}

pub(crate) async fn split_reader_answers_pings_while_writer_idle<A: AsyncAdapter>() {
    let (listener, addr) = harness::listen();
    let peer = on_thread(move || {
        let mut raw = Raw::accept(listener);
        for i in 0..5u8 {
            raw.send(FIN | PING, &[i; 5]);
            let pong = raw.frame();
            assert_eq!((pong.opcode, &pong.payload[..]), (PONG, &[i; 5][..]), "{pong:?}");
        }
        raw.send(FIN | TEXT, b"hello reader");
        raw.send_close(1000, "bye");
        let answer = raw.frame();
        assert_eq!(answer.close_code(), Some(1000), "{answer:?}");
    });
    let ws = A::connect(addr, Config::default()).await.unwrap();
    let (reader, mut writer) = ws.split();
    // The writer stays here, idle; the reader has a task of its own.
    let reader = A::spawn(read_all(reader));
    peer.await;
    let (messages, result) = reader.await;
    assert_eq!((messages, result), (vec![Msg::Text("hello reader".into())], Ok(())));
    // The peer's close ended the writer's side too.
    assert_eq!(writer.send(&Msg::Text("late".into())).await, Err(Fail::Ws(Error::Usage(UsageError::Closing))));
}

pub(crate) async fn split_writer_sees_the_readers_error<A: AsyncAdapter>() {
    let (listener, addr) = harness::listen();
    let peer = on_thread(move || {
        let mut raw = Raw::accept(listener);
        // A server must not mask.
        raw.send_bytes(&raw::encode(FIN | TEXT, b"masked", Some([1, 2, 3, 4])));
        let close = raw.frame();
        assert_eq!(close.close_code(), Some(1002), "{close:?}");
        raw.send_close(1002, "");
        // The writer half keeps the socket open: no end of stream to wait for.
    });
    let ws = A::connect(addr, Config::default()).await.unwrap();
    let (reader, mut writer) = ws.split();
    let reader = A::spawn(read_all(reader));
    let (messages, result) = reader.await;
    let error = Fail::Ws(Error::Protocol(ProtocolError::MaskedFrame));
    assert_eq!((messages, result), (vec![], Err(error)));
    peer.await;
    assert_eq!(
        writer.send(&Msg::Text("after the failure".into())).await,
        Err(Fail::Ws(Error::Protocol(ProtocolError::MaskedFrame)))
    );
}

pub(crate) async fn split_close_through_the_writer<A: AsyncAdapter>() {
    let (addr, server) = harness::server::<A, _, _>(Config::default(), harness::echo);
    let ws = A::connect(addr, Config::default()).await.unwrap();
    let (reader, mut writer) = ws.split();
    let reader = A::spawn(read_all(reader));
    let sent: Vec<Msg> = (0..3).map(|i| Msg::Text(format!("message {i}"))).collect();
    for message in &sent {
        writer.send(message).await.unwrap();
    }
    writer.close(CloseCode(4003), "the writer closes").await.unwrap();
    // The reader completes the closing handshake and ends cleanly, after
    // every echo.
    let (messages, result) = reader.await;
    assert_eq!((&messages, result), (&sent, Ok(())));
    let ending = server.await;
    ending.assert_clean(4003, "the writer closes");
    assert_eq!(ending.messages, sent);
    assert_eq!(writer.send(&sent[0]).await, Err(Fail::Ws(Error::Usage(UsageError::Closing))));
}

pub(crate) async fn split_halves_work_at_once_then_reunite<A: AsyncAdapter>() {
    // Far more than the socket buffers hold: one task that sent all of it
    // before reading would wait forever for a peer blocked on its echoes.
    const COUNT: usize = 200;
    let (addr, server) = harness::server::<A, _, _>(Config::default(), harness::echo);
    let ws = A::connect(addr, Config::default()).await.unwrap();
    let (mut reader, mut writer) = ws.split();
    let message = |i: usize| Msg::Binary(binary_of(64 * 1024, i as u64));
    let writing = A::spawn(async move {
        for i in 0..COUNT {
            writer.send(&message(i)).await.unwrap();
            if i % 50 == 0 {
                writer.ping(b"from the writer").await.unwrap();
            }
        }
        writer
    });
    let reading = A::spawn(async move {
        for i in 0..COUNT {
            assert_eq!(reader.recv().await.unwrap(), Some(message(i)), "echo {i}");
        }
        reader
    });
    let (writer, reader) = (writing.await, reading.await);

    let mut ws = A::Ws::reunite(reader, writer);
    let last = Msg::Text("whole again".into());
    harness::Ws::send(&mut ws, &last).await.unwrap();
    assert_eq!(harness::Ws::recv(&mut ws).await.unwrap(), Some(last));
    harness::Ws::close(&mut ws, CloseCode::NORMAL, "").await.unwrap();
    let ending = server.await;
    ending.assert_clean(1000, "");
    assert_eq!(ending.messages.len(), COUNT + 1);
}

pub(crate) async fn stream_and_sink_of_owned_messages<A: AsyncAdapter>() {
    let (addr, server) = harness::server::<A, _, _>(Config::default(), |mut ws: A::Ws| async move {
        // Echo through the `Stream` and the `Sink`.
        let mut count = 0;
        while let Some(message) = ws.next().await {
            ws.sink_feed(&message.unwrap()).await.unwrap();
            ws.sink_flush().await.unwrap();
            count += 1;
        }
        count
    });
    let mut ws = A::connect(addr, Config::default()).await.unwrap();
    let sent: Vec<Msg> = (0..50)
        .map(|i| if i % 2 == 0 { Msg::Text(format!("owned {i} ✓")) } else { Msg::Binary(binary_of(i * 100, i as u64)) })
        .collect();
    for message in &sent {
        ws.sink_feed(message).await.unwrap();
    }
    ws.sink_flush().await.unwrap();
    for message in &sent {
        assert_eq!(ws.next().await.unwrap().as_ref(), Ok(message));
    }
    // `Sink::close` is the closing handshake, to the end.
    ws.sink_close().await.unwrap();
    assert!(ws.next().await.is_none(), "the stream ends after the close");
    assert_eq!(server.await, sent.len());
}
