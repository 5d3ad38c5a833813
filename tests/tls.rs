//! `wss://` over loopback, for each adapter: echo round trips (a 1 MiB
//! message, permessage-deflate), certificate checks, mismatched schemes,
//! silent and vanishing peers. Certificates come from a CA made here with
//! rcgen; clients trust only it. Every client runs in its own thread under
//! an outer deadline, so a hang fails the test instead of stalling it.

#[cfg(not(feature = "rustls"))]
#[test]
fn wss_without_the_feature_names_it() {
    let error = wscore::blocking::connect("wss://127.0.0.1:9/").expect_err("no TLS built in");
    assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
    assert!(error.to_string().contains("`rustls` feature"), "{error}");
    #[cfg(feature = "tokio")]
    {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let error = runtime.block_on(wscore::tokio::connect("wss://127.0.0.1:9/")).expect_err("no TLS built in");
        assert!(error.to_string().contains("`rustls` feature"), "{error}");
    }
}

#[cfg(all(feature = "rustls", feature = "tokio", feature = "futures-io"))]
mod wss {
    use std::io::{self, Read as _};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use wscore::deflate::DeflateConfig;
    use wscore::tls::rustls::pki_types::PrivateKeyDer;
    use wscore::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig, ServerConnection, StreamOwned};
    use wscore::{Accept, ClientHandshake, CloseCode, Config, Connection, Message};

    /// How long a client may take before the test calls it a hang: far
    /// longer than any handshake timeout here, and never reached by a
    /// passing test.
    const HANG: Duration = Duration::from_secs(60);

    /// The handshake timeout on both sides: short, so that a failure to
    /// bound a handshake shows as an error quickly, not as a slow test.
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Adapter {
        Blocking,
        Tokio,
        Futures,
    }

    const ADAPTERS: [Adapter; 3] = [Adapter::Blocking, Adapter::Tokio, Adapter::Futures];

    /// A CA, a server certificate it signed for `names`, and the two
    /// configurations built on them.
    struct Pki {
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    }

    fn pki(names: &[&str]) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "wscore test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &*ca).unwrap();

        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let client = Arc::new(wscore::tls::client_config(roots));

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Pki { server: Arc::new(server), client }
    }

    fn config() -> Config {
        let mut config = Config::default();
        config.handshake_timeout = Some(HANDSHAKE_TIMEOUT);
        config.deflate = Some(DeflateConfig::default());
        config
    }

    /// The rustls error inside an error from any adapter, if TLS failed.
    fn tls_error(error: &io::Error) -> Option<&rustls::Error> {
        error.get_ref()?.downcast_ref()
    }

    // ----- Servers ------------------------------------------------------------

    /// What a test server does with its one connection.
    #[derive(Clone, Copy)]
    enum Serve {
        /// Echoes until the client closes; returns how many it echoed.
        Echo,
        /// Echoes one message, then drops the connection: TCP closes with
        /// no close frame and no TLS close_notify.
        DropAfterOne,
    }

    /// Starts a WebSocket server on `adapter` for one connection, over TLS
    /// with `tls`, plain without.
    fn server(
        adapter: Adapter,
        tls: Option<Arc<ServerConfig>>,
        serve: Serve,
    ) -> (SocketAddr, JoinHandle<io::Result<usize>>) {
        server_with(adapter, tls, serve, config())
    }

    /// [`server`] with a configuration.
    fn server_with(
        adapter: Adapter,
        tls: Option<Arc<ServerConfig>>,
        serve: Serve,
        config: Config,
    ) -> (SocketAddr, JoinHandle<io::Result<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (tcp, _) = listener.accept()?;
            match adapter {
                Adapter::Blocking => serve_blocking(tcp, tls, serve, config),
                Adapter::Tokio => {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(serve_tokio(tcp, tls, serve, config))
                }
                Adapter::Futures => smol::block_on(serve_futures(tcp, tls, serve, config)),
            }
        });
        (addr, handle)
    }

    fn serve_blocking(
        tcp: TcpStream,
        tls: Option<Arc<ServerConfig>>,
        serve: Serve,
        config: Config,
    ) -> io::Result<usize> {
        use wscore::blocking::WebSocket;
        let Some(tls) = tls else {
            return echo_blocking(wscore::blocking::accept_with(tcp, config, |_| Ok(Accept::new()))?, serve);
        };
        // rustls' own blocking stream, with the handshake timeout as the
        // socket's read timeout while rustls completes its handshake on
        // the first read.
        tcp.set_read_timeout(config.handshake_timeout)?;
        let session = ServerConnection::new(tls).map_err(io::Error::other)?;
        let conn = Connection::server(config, Duration::ZERO).map_err(wscore::blocking::to_io)?;
        let mut ws = WebSocket::new(StreamOwned::new(session, tcp), conn);
        ws.set_timeout_hook(Some(|stream: &StreamOwned<ServerConnection, TcpStream>, timeout| {
            stream.sock.set_read_timeout(timeout)
        }));
        ws.handshake_as_server(|_| Ok(Accept::new()))?;
        // Dropped at the end without close_notify, as many servers do: the
        // client must take that as the end of a clean close.
        echo_blocking(ws, serve)
    }

    fn echo_blocking<S: io::Read + io::Write>(
        mut ws: wscore::blocking::WebSocket<S>,
        serve: Serve,
    ) -> io::Result<usize> {
        let mut count = 0;
        while let Some(message) = ws.read()? {
            let (text, bytes) = match message {
                Message::Text(t) => (true, t.as_bytes().to_vec()),
                Message::Binary(b) => (false, b.to_vec()),
            };
            if text {
                ws.send(Message::Text(std::str::from_utf8(&bytes).unwrap()))?;
            } else {
                ws.send(Message::Binary(&bytes))?;
            }
            count += 1;
            if matches!(serve, Serve::DropAfterOne) {
                return Ok(count);
            }
        }
        Ok(count)
    }

    async fn serve_tokio(
        tcp: TcpStream,
        tls: Option<Arc<ServerConfig>>,
        serve: Serve,
        config: Config,
    ) -> io::Result<usize> {
        tcp.set_nonblocking(true)?;
        let tcp = tokio::net::TcpStream::from_std(tcp)?;
        match tls {
            Some(tls) => {
                echo_async(wscore::tokio::accept_tls(tcp, tls, config, |_| Ok(Accept::new())).await?, serve).await
            }
            None => echo_async(wscore::tokio::accept_with(tcp, config, |_| Ok(Accept::new())).await?, serve).await,
        }
    }

    async fn serve_futures(
        tcp: TcpStream,
        tls: Option<Arc<ServerConfig>>,
        serve: Serve,
        config: Config,
    ) -> io::Result<usize> {
        let tcp = smol::net::TcpStream::try_from(tcp)?;
        match tls {
            Some(tls) => {
                echo_futures(wscore::futures::accept_tls(tcp, tls, config, |_| Ok(Accept::new())).await?, serve).await
            }
            None => echo_futures(wscore::futures::accept_with(tcp, config, |_| Ok(Accept::new())).await?, serve).await,
        }
    }

    /// The echo loop, written once per adapter family through the
    /// `Stream`/`Sink` of owned messages.
    macro_rules! echo_owned {
        ($name:ident, $module:ident, $bound:path, $bound2:path) => {
            async fn $name<S: $bound + $bound2 + Unpin>(
                mut ws: wscore::$module::WebSocket<S>,
                serve: Serve,
            ) -> io::Result<usize> {
                use futures_util::StreamExt;
                let mut count = 0;
                while let Some(message) = ws.next().await {
                    ws.send_owned(message?).await?;
                    count += 1;
                    if matches!(serve, Serve::DropAfterOne) {
                        return Ok(count);
                    }
                }
                Ok(count)
            }
        };
    }
    echo_owned!(echo_async, tokio, tokio::io::AsyncRead, tokio::io::AsyncWrite);
    echo_owned!(echo_futures, futures, smol::io::AsyncRead, smol::io::AsyncWrite);

    /// A TCP server that reads what comes and never answers, until the
    /// client goes away.
    fn silent_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut buf = [0; 4096];
            while matches!(tcp.read(&mut buf), Ok(n) if n > 0) {}
        });
        addr
    }

    /// A TCP server that reads the client's first flight (a ClientHello)
    /// and closes the connection.
    fn vanishing_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut buf = [0; 16 * 1024];
            let _ = tcp.read(&mut buf);
        });
        addr
    }

    // ----- Clients -------------------------------------------------------------

    /// What a client run saw.
    #[derive(Debug)]
    struct Seen {
        deflate: bool,
        echoed: usize,
    }

    /// Connects to `url` with `adapter` (the client trusting `tls`), sends
    /// each message and checks its echo, then closes, or, with `close`
    /// false, waits for the server to end the connection and returns how
    /// that went. Runs in a thread of its own and panics if it hangs.
    fn client(
        adapter: Adapter,
        url: &str,
        tls: Arc<ClientConfig>,
        messages: Vec<Vec<u8>>,
        close: bool,
    ) -> io::Result<Seen> {
        let (done, result) = mpsc::channel();
        let target = url.to_owned();
        let url = url.to_owned();
        thread::spawn(move || {
            let outcome = match adapter {
                Adapter::Blocking => client_blocking(&url, tls, &messages, close),
                Adapter::Tokio => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(client_tokio(&url, tls, &messages, close)),
                Adapter::Futures => smol::block_on(client_futures(&url, tls, &messages, close)),
            };
            let _ = done.send(outcome);
        });
        result.recv_timeout(HANG).unwrap_or_else(|_| panic!("{adapter:?} client to {target} hung"))
    }

    /// Text messages are sent as text (their first byte says which).
    fn as_message(bytes: &[u8]) -> Message<'_> {
        match bytes.first() {
            Some(b'T') => Message::Text(std::str::from_utf8(bytes).unwrap()),
            _ => Message::Binary(bytes),
        }
    }

    fn check_echo(sent: &[u8], got: Option<Message<'_>>) {
        let got = match got {
            Some(Message::Text(t)) => t.as_bytes(),
            Some(Message::Binary(b)) => b,
            None => panic!("the server closed instead of echoing"),
        };
        assert!(got == sent, "echo differs: {} bytes sent, {} back", sent.len(), got.len());
    }

    fn client_blocking(url: &str, tls: Arc<ClientConfig>, messages: &[Vec<u8>], close: bool) -> io::Result<Seen> {
        let (mut ws, _) = wscore::blocking::connect_with_tls(url, config(), tls)?;
        for message in messages {
            ws.send(as_message(message))?;
            check_echo(message, ws.read()?);
        }
        let seen = Seen { deflate: ws.connection().deflate().is_some(), echoed: messages.len() };
        if close {
            ws.close(CloseCode::NORMAL, "done")?;
        } else if let Some(message) = ws.read()? {
            panic!("unexpected {message:?}");
        }
        Ok(seen)
    }

    async fn client_tokio(url: &str, tls: Arc<ClientConfig>, messages: &[Vec<u8>], close: bool) -> io::Result<Seen> {
        let (mut ws, _) = wscore::tokio::connect_with_tls(url, config(), tls).await?;
        for message in messages {
            ws.send(as_message(message)).await?;
            check_echo(message, ws.recv().await?);
        }
        let seen = Seen { deflate: ws.connection().deflate().is_some(), echoed: messages.len() };
        if close {
            ws.close(CloseCode::NORMAL, "done").await?;
        } else if let Some(message) = ws.recv().await? {
            panic!("unexpected {message:?}");
        }
        Ok(seen)
    }

    async fn client_futures(url: &str, tls: Arc<ClientConfig>, messages: &[Vec<u8>], close: bool) -> io::Result<Seen> {
        let handshake = ClientHandshake::new(url).map_err(|e| wscore::blocking::to_io(e.into()))?;
        let tcp = smol::net::TcpStream::connect((handshake.host(), handshake.port())).await?;
        if handshake.is_secure() {
            let (ws, _) = wscore::futures::client_tls(tcp, handshake, config(), tls).await?;
            futures_session(ws, messages, close).await
        } else {
            let (ws, _) = wscore::futures::client(tcp, handshake, config()).await?;
            futures_session(ws, messages, close).await
        }
    }

    async fn futures_session<S>(
        mut ws: wscore::futures::WebSocket<S>,
        messages: &[Vec<u8>],
        close: bool,
    ) -> io::Result<Seen>
    where
        S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin,
    {
        for message in messages {
            ws.send(as_message(message)).await?;
            check_echo(message, ws.recv().await?);
        }
        let seen = Seen { deflate: ws.connection().deflate().is_some(), echoed: messages.len() };
        if close {
            ws.close(CloseCode::NORMAL, "done").await?;
        } else if let Some(message) = ws.recv().await? {
            panic!("unexpected {message:?}");
        }
        Ok(seen)
    }

    /// A small text, 1 MiB of compressible text, and 1 MiB that does not
    /// compress (so deflate's fallback to stored blocks runs too).
    fn messages() -> Vec<Vec<u8>> {
        let mut compressible = b"T".to_vec();
        while compressible.len() < 1 << 20 {
            compressible.extend_from_slice(b"the quick brown fox jumps over the lazy dog; ");
        }
        compressible.truncate(1 << 20);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random: Vec<u8> = (0..1 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        random[0] = 0; // binary, not 'T'
        vec![b"That's one small step".to_vec(), compressible, random]
    }

    // ----- Tests ---------------------------------------------------------------

    #[test]
    fn wss_echo_for_each_adapter() {
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let (addr, server) = server(adapter, Some(Arc::clone(&pki.server)), Serve::Echo);
            let url = format!("wss://localhost:{}/echo", addr.port());
            let seen = client(adapter, &url, Arc::clone(&pki.client), messages(), true)
                .unwrap_or_else(|e| panic!("{adapter:?}: {e}"));
            assert!(seen.deflate, "{adapter:?}: permessage-deflate was negotiated");
            assert_eq!(seen.echoed, 3);
            assert_eq!(server.join().unwrap().unwrap_or_else(|e| panic!("{adapter:?} server: {e}")), 3);
        }
    }

    #[test]
    fn async_client_ends_cleanly_when_the_server_skips_close_notify() {
        // The blocking server drops TCP after the closing handshake without
        // close_notify: not a truncation, since the WebSocket already
        // closed cleanly.
        let pki = pki(&["localhost"]);
        for adapter in [Adapter::Tokio, Adapter::Futures] {
            let (addr, server) = server(Adapter::Blocking, Some(Arc::clone(&pki.server)), Serve::Echo);
            let url = format!("wss://localhost:{}/", addr.port());
            client(adapter, &url, Arc::clone(&pki.client), vec![b"Thello".to_vec()], true)
                .unwrap_or_else(|e| panic!("{adapter:?}: {e}"));
            assert_eq!(server.join().unwrap().unwrap(), 1);
        }
    }

    #[test]
    fn tokio_split_halves_over_tls_send_and_receive_at_once() {
        let pki = pki(&["localhost"]);
        let (addr, server) = server(Adapter::Tokio, Some(Arc::clone(&pki.server)), Serve::Echo);
        let url = format!("wss://localhost:{}/", addr.port());
        let tls = Arc::clone(&pki.client);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let (ws, _) = wscore::tokio::connect_with_tls(&url, config(), tls).await.unwrap();
            let (mut reader, mut writer) = ws.split();
            // Enough in flight that both directions fill their socket
            // buffers: the reader must not steal the writer's wake-up.
            let count = 16;
            let writing = tokio::spawn(async move {
                for i in 0..count {
                    writer.send(Message::Binary(&vec![i as u8; 256 * 1024])).await.unwrap();
                }
                writer
            });
            for i in 0..count {
                match tokio::time::timeout(HANG, reader.recv()).await.expect("hung").unwrap() {
                    Some(Message::Binary(b)) => assert!(b.len() == 256 * 1024 && b.iter().all(|&x| x == i as u8)),
                    other => panic!("{other:?}"),
                }
            }
            let mut writer = writing.await.unwrap();
            writer.close(CloseCode::NORMAL, "").await.unwrap();
            assert!(reader.recv().await.unwrap().is_none());
        });
        assert_eq!(server.join().unwrap().unwrap(), 16);
    }

    #[test]
    fn wrong_host_is_a_certificate_error_for_each_adapter() {
        // The certificate is for "localhost"; the URL names 127.0.0.1.
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let (addr, server) = server(adapter, Some(Arc::clone(&pki.server)), Serve::Echo);
            let url = format!("wss://127.0.0.1:{}/", addr.port());
            let error = client(adapter, &url, Arc::clone(&pki.client), vec![], true).expect_err("wrong host");
            assert!(
                matches!(
                    tls_error(&error),
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. }))
                ),
                "{adapter:?}: {error:?}"
            );
            // The client's fatal alert reaches the server as an error.
            let error = server.join().unwrap().expect_err("the client refused the certificate");
            assert!(
                matches!(
                    tls_error(&error),
                    Some(rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate))
                ),
                "{adapter:?} server: {error:?}"
            );
        }
    }

    #[test]
    fn untrusted_certificate_is_refused() {
        // A server whose CA the client does not trust (another test CA).
        let (server_pki, client_pki) = (pki(&["localhost"]), pki(&["localhost"]));
        for adapter in ADAPTERS {
            let (addr, _server) = server(Adapter::Tokio, Some(Arc::clone(&server_pki.server)), Serve::Echo);
            let url = format!("wss://localhost:{}/", addr.port());
            let error = client(adapter, &url, Arc::clone(&client_pki.client), vec![], true).expect_err("untrusted");
            assert!(
                matches!(
                    tls_error(&error),
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
                        | Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
                ),
                "{adapter:?}: {error:?}"
            );
        }
    }

    #[test]
    fn wss_to_a_plain_port_says_so_for_each_adapter() {
        // Our WebSocket server waits for the end of the request's headers,
        // which a ClientHello never brings, and answers with an HTTP error
        // when its handshake timeout passes: let that come well before the
        // client's own timeout.
        let mut impatient = config();
        impatient.handshake_timeout = Some(Duration::from_millis(50));
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let (addr, _server) = server_with(adapter, None, Serve::Echo, impatient.clone());
            let url = format!("wss://localhost:{}/", addr.port());
            let error = client(adapter, &url, Arc::clone(&pki.client), vec![], true).expect_err("not TLS");
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{adapter:?}: {error}");
            assert!(error.to_string().contains("plain HTTP, not TLS"), "{adapter:?}: {error}");
        }
    }

    #[test]
    fn ws_to_a_tls_port_fails_for_each_adapter() {
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let (addr, server) = server(adapter, Some(Arc::clone(&pki.server)), Serve::Echo);
            let url = format!("ws://localhost:{}/", addr.port());
            let error = client(adapter, &url, Arc::clone(&pki.client), vec![], true).expect_err("TLS, not HTTP");
            // The TLS server answers with an alert (not HTTP) and closes.
            assert!(
                wscore::blocking::ws_error(&error)
                    .is_some_and(|e| matches!(e, wscore::Error::Handshake(_) | wscore::Error::ConnectionLost))
                    || matches!(error.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset),
                "{adapter:?}: {error:?}"
            );
            // The server saw a plain HTTP request where a ClientHello
            // belongs (rustls' blocking stream says it in its own words).
            let error = server.join().unwrap().expect_err("not TLS");
            if adapter == Adapter::Blocking {
                assert!(tls_error(&error).is_some(), "{adapter:?} server: {error:?}");
            } else {
                assert!(error.to_string().contains("plain HTTP, not TLS"), "{adapter:?} server: {error}");
            }
        }
    }

    #[test]
    fn silent_server_times_out_the_tls_handshake_for_each_adapter() {
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let url = format!("wss://localhost:{}/", silent_server().port());
            let error = client(adapter, &url, Arc::clone(&pki.client), vec![], true).expect_err("no answer");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{adapter:?}: {error}");
        }
    }

    #[test]
    fn peer_closing_during_the_tls_handshake_is_an_error_for_each_adapter() {
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let url = format!("wss://localhost:{}/", vanishing_server().port());
            let error = client(adapter, &url, Arc::clone(&pki.client), vec![], true).expect_err("server vanished");
            assert!(
                matches!(error.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset),
                "{adapter:?}: {error:?}"
            );
        }
    }

    #[test]
    fn peer_dropping_tcp_mid_session_is_an_error_for_each_adapter() {
        // No close frame, no close_notify: a truncation, not a clean end.
        let pki = pki(&["localhost"]);
        for adapter in ADAPTERS {
            let (addr, server) = server(adapter, Some(Arc::clone(&pki.server)), Serve::DropAfterOne);
            let url = format!("wss://localhost:{}/", addr.port());
            let error = client(adapter, &url, Arc::clone(&pki.client), vec![b"Tone".to_vec()], false)
                .expect_err("the server vanished");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{adapter:?}: {error:?}");
            assert_eq!(server.join().unwrap().unwrap(), 1);
        }
    }

    #[test]
    fn default_client_config_is_shared_and_offers_http11() {
        let config = wscore::tls::default_client_config();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        // The same configuration each time: built once.
        assert!(Arc::ptr_eq(&config, &wscore::tls::default_client_config()));
    }
}
