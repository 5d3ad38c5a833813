//! A first round trip through each async adapter over loopback (tokio, and
//! smol for futures-io); the behaviour suite covers them in depth.

#![cfg(feature = "tokio")]
use futures_util::StreamExt;
use wscore::{CloseCode, Message};

#[tokio::test]
async fn smoke() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = wscore::tokio::accept(stream).await.unwrap();
        let mut n = 0;
        while let Some(m) = ws.next().await {
            ws.send_owned(m.unwrap()).await.unwrap();
            n += 1;
        }
        n
    });
    let (mut ws, _) = wscore::tokio::connect(&format!("ws://{addr}/")).await.unwrap();
    for i in 0..100 {
        let text = format!("hello {i}");
        ws.send(Message::Text(&text)).await.unwrap();
        match ws.recv().await.unwrap() {
            Some(Message::Text(t)) => assert_eq!(t, text),
            other => panic!("{other:?}"),
        }
    }
    let big = vec![7u8; 1 << 20];
    ws.send(Message::Binary(&big)).await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Some(Message::Binary(b)) if b == &big[..]));
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert_eq!(server.await.unwrap(), 101);
}

#[cfg(feature = "futures-io")]
#[test]
fn smoke_smol() {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = smol::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = wscore::futures::accept(stream).await.unwrap();
            let mut n = 0;
            while let Some(m) = ws.next().await {
                ws.send_owned(m.unwrap()).await.unwrap();
                n += 1;
            }
            n
        });
        let stream = smol::net::TcpStream::connect(addr).await.unwrap();
        let hs = wscore::ClientHandshake::new(&format!("ws://{addr}/")).unwrap();
        let (mut ws, _) = wscore::futures::client(stream, hs, wscore::Config::default()).await.unwrap();
        for i in 0..100 {
            let text = format!("hello {i}");
            ws.send(Message::Text(&text)).await.unwrap();
            match ws.recv().await.unwrap() {
                Some(Message::Text(t)) => assert_eq!(t, text),
                other => panic!("{other:?}"),
            }
        }
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert_eq!(server.await, 100);
    });
}
