//! A server connection split into its receive half and its send half,
//! driven from two threads at once while a whole client connection talks
//! to it: echoes flow, the reader's pongs go out through the writer, an
//! error either half meets reaches the other, the closing handshake spans
//! both, and heartbeats run while both halves are idle.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wscore::{
    CloseCode, Config, Connection, Error, Event, EventKind, Message, ProtocolError, RecvHalf, Role, SendHalf, State,
};

const NOW: Duration = Duration::ZERO;

fn split_server(config: Config) -> (RecvHalf, SendHalf) {
    Connection::frames_only(Role::Server, config, NOW).unwrap().split().unwrap()
}

fn client() -> Connection {
    Connection::frames_only(Role::Client, Config::default(), NOW).unwrap()
}

/// What the reader thread tells the writer thread.
enum ToWriter {
    /// Send this message back.
    Echo(Vec<u8>),
    /// Control frames are owed: transmit.
    Wake,
    /// The reader is done.
    Done,
}

#[test]
fn two_threads_echo_while_the_reader_owes_pongs() {
    let (rx, tx) = split_server(Config::default());
    let (to_server, server_in) = mpsc::channel::<Vec<u8>>();
    let (server_out, from_server) = mpsc::channel::<Vec<u8>>();
    let (to_writer, writer_in) = mpsc::channel::<ToWriter>();

    let reader = thread::spawn(move || {
        let mut rx = rx;
        let mut messages = 0;
        for bytes in server_in {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = rx.receive(NOW, rest);
                rest = &rest[n..];
                while let Some(event) = rx.poll_event() {
                    match event {
                        Event::Message(Message::Binary(data)) => {
                            messages += 1;
                            to_writer.send(ToWriter::Echo(data.to_vec())).unwrap();
                        }
                        Event::Ping(_) => {}
                        other => panic!("{other:?}"),
                    }
                }
                if rx.owes_transmission() {
                    to_writer.send(ToWriter::Wake).unwrap();
                }
            }
        }
        to_writer.send(ToWriter::Done).unwrap();
        messages
    });
    let writer = thread::spawn(move || {
        let mut tx = tx;
        for order in writer_in {
            match order {
                ToWriter::Echo(data) => tx.send_binary(&data).unwrap(),
                ToWriter::Wake => {}
                ToWriter::Done => break,
            }
            let mut out = Vec::new();
            tx.transmit_into(&mut out);
            if !out.is_empty() {
                server_out.send(out).unwrap();
            }
        }
    });

    let mut client = client();
    let mut sent = Vec::new();
    for i in 0..2000u32 {
        let data: Vec<u8> = (0..(i % 300) as usize).map(|j| (i as usize + j) as u8).collect();
        client.send_binary(&data).unwrap();
        if i % 7 == 0 {
            client.send_ping(&i.to_be_bytes()).unwrap();
        }
        sent.push(data);
        let mut wire = Vec::new();
        client.transmit_into(&mut wire);
        to_server.send(wire).unwrap();
    }
    drop(to_server);
    assert_eq!(reader.join().unwrap(), 2000);
    writer.join().unwrap();

    let (mut echoes, mut pongs) = (Vec::new(), Vec::new());
    for bytes in from_server {
        assert_eq!(client.receive(NOW, &bytes), bytes.len());
        while let Some(event) = client.poll_event() {
            match event {
                Event::Message(Message::Binary(data)) => echoes.push(data.to_vec()),
                Event::Pong(payload) => pongs.push(u32::from_be_bytes(payload.try_into().unwrap())),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(echoes, sent, "every message back once, in order");
    // Pongs answer pings, in order. When the writer falls behind, at most
    // `max_queued_pongs` wait and the newest replaces the last (RFC 6455
    // §5.5.3), so some pings may go unanswered, never the latest.
    let pings: Vec<u32> = (0..2000).step_by(7).collect();
    assert!(pongs.windows(2).all(|w| w[0] < w[1]), "{pongs:?}");
    assert!(pongs.iter().all(|p| pings.contains(p)));
    assert_eq!(pongs.last(), pings.last());
    println!("MEASURE {} of {} pings answered with the writer on another thread", pongs.len(), pings.len());
}

#[test]
fn an_error_the_reader_meets_is_what_the_writer_reports() {
    let (mut rx, mut tx) = split_server(Config::default());
    // An unmasked frame from a "client".
    assert_eq!(rx.receive(NOW, &[0x82, 1, b'x']), 3);
    match rx.poll_event() {
        Some(Event::Closed(closed)) => assert_eq!(closed.error, Some(ProtocolError::UnmaskedFrame.into())),
        other => panic!("{other:?}"),
    }
    let expected: Error = ProtocolError::UnmaskedFrame.into();
    assert_eq!(tx.send_text("too late"), Err(expected));
    assert_eq!(tx.close(NOW, CloseCode::NORMAL, ""), Err(expected));
    // The writer sends the 1002 the reader's failure owes.
    assert!(rx.owes_transmission() && tx.wants_write());
    let mut wire = Vec::new();
    tx.transmit_into(&mut wire);
    assert_eq!(&wire[..4], [0x88, 2 + ProtocolError::UnmaskedFrame.reason().len() as u8, 0x03, 0xEA]);
    // Then both linger for the peer's close or EOF.
    assert!(!tx.is_finished() && !rx.is_finished());
    rx.handle_eof();
    assert!(tx.is_finished() && rx.is_finished());
}

#[test]
fn the_closing_handshake_spans_both_halves() {
    let (mut rx, mut tx) = split_server(Config::default());
    let mut client = client();
    client.close(NOW, CloseCode::NORMAL, "bye").unwrap();
    let mut wire = Vec::new();
    client.transmit_into(&mut wire);
    assert_eq!(rx.receive(NOW, &wire), wire.len());
    assert!(matches!(rx.poll_event(), Some(Event::Close(frame)) if frame.reason == "bye"));
    assert!(rx.poll_event().is_none(), "not closed until the writer sends our answer");
    assert_eq!(rx.state(), State::Closing);
    let mut answer = Vec::new();
    tx.transmit_into(&mut answer);
    assert_eq!(answer, [0x88, 2, 0x03, 0xE8]);
    match rx.poll_event() {
        Some(Event::Closed(closed)) => assert!(closed.clean && closed.code == CloseCode::NORMAL),
        other => panic!("{other:?}"),
    }
    assert!(tx.is_finished() && rx.is_finished(), "a server closes TCP first");
    assert_eq!(client.receive(NOW, &answer), answer.len());
    assert!(matches!(client.poll_event(), Some(Event::Close(_))));
    assert!(matches!(client.poll_event(), Some(Event::Closed(c)) if c.clean));
}

#[test]
fn heartbeats_run_while_both_halves_are_idle() {
    let config = {
        let mut c = Config::default();
        c.ping_interval = Some(Duration::from_secs(10));
        c.idle_timeout = Some(Duration::from_secs(25));
        c
    };
    let (mut rx, mut tx) = split_server(config);
    // The reader's timer owes a ping; the writer sends it.
    let deadline = rx.poll_timeout().unwrap();
    assert_eq!(deadline, Duration::from_secs(10));
    rx.handle_timeout(deadline);
    assert!(rx.owes_transmission());
    let mut wire = Vec::new();
    tx.transmit_into(&mut wire);
    assert_eq!(wire, [0x89, 0]);
    // Nothing comes back: the idle timeout fails the connection with 1001,
    // whichever half runs the timer.
    let deadline = tx.poll_timeout().unwrap();
    tx.handle_timeout(Duration::from_secs(25).max(deadline));
    assert_eq!(rx.peek_event(), Some(EventKind::Closed));
    let mut wire = Vec::new();
    tx.transmit_into(&mut wire);
    assert_eq!(&wire[..4], [0x88, 14, 0x03, 0xE9]);
}

#[test]
fn split_waits_for_the_handshake_and_reunite_checks_the_halves() {
    let server = Connection::server(Config::default(), NOW).unwrap();
    let server = server.split().expect_err("the handshake is not done");
    assert_eq!(server.state(), State::Handshake);
    let (rx1, tx1) = split_server(Config::default());
    let (rx2, tx2) = split_server(Config::default());
    let wscore::ReuniteError(rx1, tx2) = rx1.reunite(tx2).expect_err("different connections");
    assert!(rx1.reunite(tx1).is_ok());
    assert!(rx2.reunite(tx2).is_ok());
}
