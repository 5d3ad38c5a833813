//! Fragmentation: messages sent in chunks arrive whole, and with streaming
//! on, a message arrives in pieces that join to it.

use wscore::{CloseCode, MessageKind};

use crate::harness::{self, Adapter, Msg, Piece, Ws, binary_of, config_with_deflate, text_of};

/// Splits `data` at `cuts` (ascending offsets).
fn cut<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&data.len()]) {
        pieces.push(&data[start..end]);
        start = end;
    }
    pieces
}

async fn chunked_send<A: Adapter>(deflate: bool) {
    let (addr, server) = harness::server::<A, _, _>(config_with_deflate(deflate), harness::echo);
    let mut ws = A::connect(addr, config_with_deflate(deflate)).await.unwrap();

    let text = text_of(3000, 7);
    let inside_a_character = (1..text.len()).find(|&i| !text.is_char_boundary(i)).unwrap();
    let binary = binary_of(200 * 1024, 8);
    let cases = [
        // A cut inside a character, an empty piece in the middle, and an
        // empty last piece that only carries FIN.
        (Msg::Text(text.clone()), vec![1, inside_a_character, inside_a_character, 2000, 3000]),
        (Msg::Binary(binary.clone()), (1..29).map(|i| i * 7 * 1024).collect()),
    ];
    for (message, cuts) in &cases {
        let pieces = cut(message.as_bytes(), cuts);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            ws.send_chunk(message.kind(), piece, i == last).await.unwrap();
            if i == 1 {
                // Control frames may come between the fragments.
                ws.ping(b"between fragments").await.unwrap();
            }
        }
        assert_eq!(ws.recv().await.unwrap().as_ref(), Some(message), "sent in {} pieces", cuts.len() + 1);
    }

    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let ending = server.await;
    ending.assert_clean(1000, "");
    assert_eq!(ending.messages, cases.map(|(message, _)| message));
}

pub(crate) async fn chunked_send_arrives_whole<A: Adapter>() {
    chunked_send::<A>(false).await;
}

pub(crate) async fn chunked_send_arrives_whole_deflate<A: Adapter>() {
    chunked_send::<A>(true).await;
}

/// Receives one message's pieces, checking they are well-formed.
async fn pieces<W: Ws>(ws: &mut W) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    loop {
        let piece = ws.recv_chunk().await.unwrap().expect("a piece, not the end");
        if let Some(first) = pieces.first() {
            assert_eq!(piece.kind, first.kind, "a message's pieces keep its kind");
        }
        let fin = piece.fin;
        pieces.push(piece);
        if fin {
            return pieces;
        }
    }
}

fn joined(pieces: &[Piece]) -> Msg {
    let data: Vec<u8> = pieces.iter().flat_map(|p| p.data.iter().copied()).collect();
    match pieces[0].kind {
        MessageKind::Text => Msg::Text(String::from_utf8(data).expect("streamed text joins to UTF-8")),
        MessageKind::Binary => Msg::Binary(data),
    }
}

async fn streamed_receive<A: Adapter>(deflate: bool) {
    let (addr, server) = harness::server::<A, _, _>(config_with_deflate(deflate), harness::echo);
    let mut ws = A::connect(addr, config_with_deflate(deflate)).await.unwrap();

    ws.set_streaming(true);
    let large = [Msg::Binary(binary_of(1 << 20, 1)), Msg::Text(text_of(1 << 20, 2))];
    for message in &large {
        ws.send(message).await.unwrap();
        let pieces = pieces(&mut ws).await;
        // Streaming holds at most a read's worth, so a megabyte cannot
        // come as one piece.
        assert!(pieces.len() > 1, "{} bytes in {} piece(s)", message.as_bytes().len(), pieces.len());
        assert_eq!(&joined(&pieces), message);
    }
    // A small message still comes through the chunk interface, finished.
    let small = Msg::Text("small €".into());
    ws.send(&small).await.unwrap();
    assert_eq!(joined(&pieces(&mut ws).await), small);

    // Streaming off again: whole messages.
    ws.set_streaming(false);
    ws.send(&large[1]).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().as_ref(), Some(&large[1]));

    ws.close(CloseCode::NORMAL, "").await.unwrap();
    server.await.assert_clean(1000, "");
}

pub(crate) async fn streamed_receive_in_pieces<A: Adapter>() {
    streamed_receive::<A>(false).await;
}

pub(crate) async fn streamed_receive_in_pieces_deflate<A: Adapter>() {
    streamed_receive::<A>(true).await;
}
