//! Echo of every size and kind, with and without permessage-deflate: the
//! sizes at the edges of the frame header's length encodings (125/126,
//! 65535/65536) and past the adapters' 16 KiB reads, text with multi-byte
//! characters and incompressible binary.

use wscore::CloseCode;

use crate::harness::{self, Adapter, Msg, Ws, binary_of, config_with_deflate, text_of};

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn messages(sizes: &[usize]) -> Vec<Msg> {
    let seed = |n: usize| n as u64;
    sizes.iter().flat_map(|&n| [Msg::Text(text_of(n, seed(n))), Msg::Binary(binary_of(n, seed(n) + 1))]).collect()
}

async fn echo_sizes<A: Adapter>(deflate: bool) {
    let (addr, server) = harness::server::<A, _, _>(config_with_deflate(deflate), harness::echo);
    let mut ws = A::connect(addr, config_with_deflate(deflate)).await.unwrap();
    assert_eq!(ws.connection().deflate().is_some(), deflate, "permessage-deflate negotiated as configured");

    let each = messages(&SIZES);
    for message in &each {
        ws.send(message).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().as_ref(), Some(message));
    }
    // Several in flight at once come back in order. They are small, so
    // that the echoes fit the socket buffers while we are still sending.
    let batch = messages(&[0, 1, 125, 126, 1000]);
    for message in &batch {
        ws.feed(message).await.unwrap();
    }
    ws.flush().await.unwrap();
    for message in &batch {
        assert_eq!(ws.recv().await.unwrap().as_ref(), Some(message));
    }

    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let ending = server.await;
    ending.assert_clean(1000, "");
    assert_eq!(ending.messages, [each, batch].concat());
}

pub(crate) async fn echo_every_size_and_kind<A: Adapter>() {
    echo_sizes::<A>(false).await;
}

pub(crate) async fn echo_every_size_and_kind_deflate<A: Adapter>() {
    echo_sizes::<A>(true).await;
}
