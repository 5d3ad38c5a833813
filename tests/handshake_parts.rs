//! The handshake given as parts, for servers and clients whose HTTP stack
//! (hyper, an HTTP/2 server) parsed the messages, checked against the
//! built-in HTTP/1.1 handshake of `Connection`: both paths must apply the same
//! rules, answer the same way and negotiate the same extensions.

use core::time::Duration;

use wscore::deflate::{DeflateConfig, DeflateParams, negotiate};
use wscore::handshake::accept_key;
use wscore::{
    Accept, ClientHandshake, ClientRequest, Config, Connection, Error, Event, HandshakeError, HttpVersion, Request,
    Response,
};

const NOW: Duration = Duration::ZERO;

// ===== Helpers =============================================================

/// A request as its parts, rendered to bytes for the built-in path.
#[derive(Clone, Debug)]
struct Parts {
    method: &'static str,
    version: HttpVersion,
    target: &'static str,
    headers: Vec<(&'static str, &'static str)>,
}

/// The upgrade request of RFC 6455 §1.3, with subprotocols and an extension offer.
fn rfc_request() -> Parts {
    Parts {
        method: "GET",
        version: HttpVersion::Http11,
        target: "/chat",
        headers: vec![
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Version", "13"),
        ],
    }
}

impl Parts {
    fn bytes(&self) -> Vec<u8> {
        let version = match self.version {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            other => unreachable!("{other:?} has no HTTP/1 head"),
        };
        let mut head = format!("{} {} {version}\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The parts through [`Request::from_parts`].
    fn check(&self) -> Result<Request, HandshakeError> {
        Request::from_parts(self.method, self.version, None, self.target, self.headers.iter().copied())
    }

    /// Without every field called `name`.
    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// With the fields called `name` replaced by one field per value, at
    /// the place of the first.
    fn with(mut self, name: &'static str, values: &[&'static str]) -> Self {
        let at = self.headers.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)).unwrap_or(self.headers.len());
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        for (i, value) in values.iter().enumerate() {
            self.headers.insert(at + i, (name, value));
        }
        self
    }
}

/// What a server showed for a request: the request's visible parts, or the
/// error and the response it sent.
#[derive(Debug, PartialEq)]
enum Seen {
    Request { path: String, key: Vec<u8>, protocols: Vec<String>, headers: Vec<(String, Vec<u8>)> },
    Refused(HandshakeError),
}

fn seen(request: &Request) -> Seen {
    Seen::Request {
        path: request.path().into(),
        key: request.key().into(),
        protocols: request.protocols().map(Into::into).collect(),
        headers: request.headers().map(|(n, v)| (n.into(), v.into())).collect(),
    }
}

/// A built-in server fed `bytes`: what it showed, and what it sent.
fn built_in(bytes: &[u8]) -> (Seen, Connection) {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(conn.receive(NOW, bytes), bytes.len());
    let seen = match conn.poll_event() {
        Some(Event::Request(request)) => seen(request),
        Some(Event::Closed(closed)) => match closed.error {
            Some(Error::Handshake(e)) => Seen::Refused(e),
            other => panic!("closed with {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    };
    (seen, conn)
}

fn output(conn: &mut Connection) -> Vec<u8> {
    let out = conn.poll_transmit().to_vec();
    conn.advance_transmit(out.len());
    out
}

/// A response head and body, split into status, fields and body.
fn split(response: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("complete head") + 4;
    let mut storage = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut storage);
    assert_eq!(parsed.parse(&response[..end]).unwrap(), httparse::Status::Complete(end));
    let fields =
        parsed.headers.iter().map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap())).collect();
    (parsed.code.unwrap(), fields, response[end..].to_vec())
}

fn deflate_config(f: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    f(&mut config);
    config
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// An HTTP/1.1 response head from a status and fields, for the built-in client.
fn head(status: u16, fields: impl IntoIterator<Item = (impl AsRef<str>, impl AsRef<str>)>) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} Whatever\r\n");
    for (name, value) in fields {
        head.push_str(&format!("{}: {}\r\n", name.as_ref(), value.as_ref()));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

// ===== Server: one set of rules ============================================

#[test]
fn parts_and_built_in_parser_agree_on_every_rule() {
    let good = rfc_request;
    let cases: Vec<(&str, Parts, Option<HandshakeError>)> = vec![
        ("RFC 6455 §1.3 request", good(), None),
        ("method", Parts { method: "POST", ..good() }, Some(HandshakeError::MethodNotAllowed)),
        ("method token", Parts { method: "G(T", ..good() }, Some(HandshakeError::Malformed)),
        ("HTTP/1.0", Parts { version: HttpVersion::Http10, ..good() }, Some(HandshakeError::HttpVersion)),
        ("asterisk target", Parts { target: "*", ..good() }, Some(HandshakeError::InvalidTarget)),
        ("absolute target", Parts { target: "http://a/chat", ..good() }, Some(HandshakeError::InvalidTarget)),
        ("no Host", good().without("Host"), Some(HandshakeError::Host)),
        ("two Hosts", good().with("Host", &["a", "b"]), Some(HandshakeError::Host)),
        ("no Upgrade", good().without("Upgrade"), Some(HandshakeError::Upgrade)),
        ("Upgrade h2c", good().with("Upgrade", &["h2c"]), Some(HandshakeError::Upgrade)),
        ("Upgrade in a list", good().with("Upgrade", &["h2c, WebSocket"]), None),
        ("no Connection", good().without("Connection"), Some(HandshakeError::Connection)),
        ("Connection keep-alive", good().with("Connection", &["keep-alive"]), Some(HandshakeError::Connection)),
        ("Connection list", good().with("Connection", &["keep-alive", "UPGRADE"]), None),
        ("Content-Length", good().with("Content-Length", &["5"]), Some(HandshakeError::Body)),
        ("Content-Length 0", good().with("Content-Length", &["0"]), None),
        ("Transfer-Encoding", good().with("Transfer-Encoding", &["chunked"]), Some(HandshakeError::Body)),
        ("version 8", good().with("Sec-WebSocket-Version", &["8"]), Some(HandshakeError::UnsupportedVersion)),
        ("version padded", good().with("Sec-WebSocket-Version", &[" 13 "]), None),
        ("no version", good().without("Sec-WebSocket-Version"), Some(HandshakeError::MissingVersion)),
        ("two versions", good().with("Sec-WebSocket-Version", &["13", "13"]), Some(HandshakeError::MissingVersion)),
        ("no key", good().without("Sec-WebSocket-Key"), Some(HandshakeError::Key)),
        ("short key", good().with("Sec-WebSocket-Key", &["dGhlIHNhbXBsZQ=="]), Some(HandshakeError::Key)),
        ("key not base64", good().with("Sec-WebSocket-Key", &["!!!!!!!!!!!!!!!!!!!!!!!!"]), Some(HandshakeError::Key)),
        (
            "two keys",
            good().with("Sec-WebSocket-Key", &["dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="]),
            Some(HandshakeError::Key),
        ),
        ("header name", good().with("Bad Name", &["x"]), Some(HandshakeError::Malformed)),
        ("obs-text value", good().with("X-Name", &["caf\u{e9}"]), None),
    ];
    for (what, parts, expected) in cases {
        let (built_in, mut conn) = built_in(&parts.bytes());
        let from_parts = match parts.check() {
            Ok(request) => seen(&request),
            Err(e) => Seen::Refused(e),
        };
        assert_eq!(from_parts, built_in, "{what}: parts and built-in parser differ");
        match expected {
            None => assert!(matches!(built_in, Seen::Request { .. }), "{what}: {built_in:?}"),
            Some(error) => {
                assert_eq!(built_in, Seen::Refused(error), "{what}");
                // The status sent is the one a hyper user would send.
                let (status, fields, body) = split(&output(&mut conn));
                assert_eq!(Some(status), error.status(), "{what}");
                for (name, value) in error.response_headers() {
                    let sent = field(&fields, name).unwrap_or_else(|| panic!("{what}: no {name}"));
                    assert!(sent.split(',').any(|v| v.trim() == *value), "{what}: {name}: {sent}");
                }
                assert_eq!(body, format!("{error}\n").into_bytes(), "{what}");
            }
        }
    }
}

#[test]
fn version_426_names_the_upgrade_and_closes() {
    let request = rfc_request().with("Sec-WebSocket-Version", &["8"]);
    let (_, mut conn) = built_in(&request.bytes());
    let (status, fields, _) = split(&output(&mut conn));
    assert_eq!(status, 426);
    // RFC 9110 §15.5.22: a 426 carries Upgrade; §7.8: with the upgrade
    // option in Connection, here beside close in the one field.
    assert_eq!(field(&fields, "Upgrade"), Some("websocket"));
    assert_eq!(fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case("connection")).count(), 1);
    let options: Vec<_> = field(&fields, "Connection").unwrap().split(',').map(str::trim).collect();
    assert!(options.contains(&"upgrade") && options.contains(&"close"), "{options:?}");
    assert_eq!(field(&fields, "Sec-WebSocket-Version"), Some("13"));
    // A lingering close: finished once the client closes too.
    assert!(conn.wants_shutdown() && !conn.is_finished());
    conn.handle_eof();
    assert!(conn.is_finished());
    assert_eq!(
        HandshakeError::UnsupportedVersion.response_headers(),
        [("Upgrade", "websocket"), ("Connection", "upgrade"), ("Sec-WebSocket-Version", "13")]
    );
}

#[test]
fn http10_gets_400_with_the_reason() {
    let request = Parts { version: HttpVersion::Http10, ..rfc_request() };
    let (seen, mut conn) = built_in(&request.bytes());
    assert_eq!(seen, Seen::Refused(HandshakeError::HttpVersion));
    let (status, fields, body) = split(&output(&mut conn));
    assert_eq!(status, 400, "505 is for an unsupported major version (RFC 9110 §15.6.6)");
    assert_eq!(field(&fields, "Content-Length"), Some(body.len().to_string().as_str()));
    assert_eq!(body, b"WebSocket upgrade needs HTTP/1.1\n");
    assert_eq!(request.check().err().and_then(|e| e.status()), Some(400));
}

// ===== Server: HTTP/2 extended CONNECT =====================================

/// The RFC 8441 §5 example request, as an HTTP/2 stack hands it over.
const H2_FIELDS: &[(&str, &str)] = &[
    ("sec-websocket-protocol", "chat, superchat"),
    ("sec-websocket-extensions", "permessage-deflate"),
    ("sec-websocket-version", "13"),
    ("origin", "http://www.example.com"),
];

fn h2(method: &str, protocol: Option<&str>, fields: &[(&str, &str)]) -> Result<Request, HandshakeError> {
    Request::from_parts(method, HttpVersion::Http2, protocol, "/chat", fields.iter().copied())
}

#[test]
fn http2_extended_connect_is_accepted_with_200() {
    let request = h2("CONNECT", Some("websocket"), H2_FIELDS).unwrap();
    assert_eq!((request.version(), request.method(), request.path()), (HttpVersion::Http2, "CONNECT", "/chat"));
    assert_eq!(request.key(), b"", "no key over HTTP/2");
    assert_eq!(request.header("origin"), Some(&b"http://www.example.com"[..]));

    let config = DeflateConfig::default();
    let answer = Accept::new().protocol("chat").answer(&request, Some(&config)).unwrap();
    assert_eq!(answer.status(), 200);
    let fields: Vec<_> = answer.headers().collect();
    assert_eq!(fields, [("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Extensions", "permessage-deflate")]);
    assert_eq!(answer.deflate(), Some(&DeflateParams::default()));
}

#[test]
fn http2_required_and_forbidden_fields() {
    let with = |extra: (&'static str, &'static str)| [H2_FIELDS, &[extra]].concat();
    let without_version: Vec<_> = H2_FIELDS.iter().copied().filter(|(n, _)| *n != "sec-websocket-version").collect();
    let wrong_version: Vec<_> =
        without_version.iter().copied().chain([("sec-websocket-version", "8")]).collect::<Vec<_>>();
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<(&'a str, &'a str)>, HandshakeError, u16);
    let cases: Vec<Case> = vec![
        ("GET", "GET", Some("websocket"), H2_FIELDS.to_vec(), HandshakeError::ExtendedConnect, 400),
        ("plain CONNECT", "CONNECT", None, H2_FIELDS.to_vec(), HandshakeError::ExtendedConnect, 400),
        ("other protocol", "CONNECT", Some("connect-udp"), H2_FIELDS.to_vec(), HandshakeError::ExtendedConnect, 400),
        ("Upgrade", "CONNECT", Some("websocket"), with(("upgrade", "websocket")), HandshakeError::Upgrade, 400),
        ("Connection", "CONNECT", Some("websocket"), with(("connection", "upgrade")), HandshakeError::Connection, 400),
        ("no version", "CONNECT", Some("websocket"), without_version, HandshakeError::MissingVersion, 400),
        ("version 8", "CONNECT", Some("websocket"), wrong_version, HandshakeError::UnsupportedVersionHttp2, 400),
        ("body", "CONNECT", Some("websocket"), with(("content-length", "1")), HandshakeError::Body, 400),
        ("pseudo-header", "CONNECT", Some("websocket"), with((":authority", "a")), HandshakeError::Malformed, 400),
    ];
    for (what, method, protocol, fields, expected, status) in cases {
        let error = h2(method, protocol, &fields).expect_err(what);
        assert_eq!((error, error.status()), (expected, Some(status)), "{what}");
    }
    // Over HTTP/2 a version error cannot be a 426, which needs Upgrade.
    assert_eq!(HandshakeError::UnsupportedVersionHttp2.response_headers(), [("Sec-WebSocket-Version", "13")]);
    // A key is not processed (RFC 8441 §5), so one sent anyway does no harm.
    assert!(h2("CONNECT", Some("websocket"), &with(("sec-websocket-key", "?"))).is_ok());
}

// ===== Server: the answer ==================================================

#[test]
fn answer_has_the_accept_key_protocol_and_deflate_answer() {
    let offers = ["permessage-deflate; client_max_window_bits; server_max_window_bits=10", "permessage-deflate"];
    let configs = [
        DeflateConfig::default(),
        deflate_config(|c| {
            c.server_no_context_takeover = true;
            c.client_max_window_bits = Some(9);
        }),
        deflate_config(|c| c.server_max_window_bits = Some(8)),
    ];
    for config in &configs {
        let request = rfc_request().with("Sec-WebSocket-Extensions", &offers).check().unwrap();
        let answer = Accept::new().protocol("superchat").header("X-Id", "7").answer(&request, Some(config)).unwrap();
        assert_eq!(answer.status(), 101);
        let (params, extensions) = negotiate(&offers, config).unwrap();
        let expected = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            // RFC 6455 §1.3.
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("Sec-WebSocket-Protocol", "superchat"),
            ("Sec-WebSocket-Extensions", extensions.as_str()),
            ("X-Id", "7"),
        ];
        assert_eq!(answer.headers().collect::<Vec<_>>(), expected, "{config:?}");
        assert_eq!((answer.protocol(), answer.deflate()), (Some("superchat"), Some(&params)));

        // The built-in handshake sends that same answer and agrees on it.
        let mut config_with = Config::default();
        config_with.deflate = Some(config.clone());
        let mut conn = Connection::server(config_with, NOW).unwrap();
        let request = rfc_request().with("Sec-WebSocket-Extensions", &offers).bytes();
        assert_eq!(conn.receive(NOW, &request), request.len());
        assert!(matches!(conn.poll_event(), Some(Event::Request(_))));
        conn.accept(&Accept::new().protocol("superchat").header("X-Id", "7")).unwrap();
        let (status, fields, _) = split(&output(&mut conn));
        assert_eq!(status, 101);
        let fields: Vec<_> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(fields, expected);
        assert_eq!((conn.protocol(), conn.deflate()), (Some("superchat"), Some(&params)));
    }
}

#[test]
fn answer_refuses_what_the_built_in_accept_refuses() {
    let request = rfc_request().check().unwrap();
    let refused = Accept::new().protocol("unoffered").answer(&request, None).err();
    assert_eq!(refused, Some(wscore::UsageError::UnofferedProtocol));
    let refused = Accept::new().header("X", "a\r\nInjected: 1").answer(&request, None).err();
    assert_eq!(refused, Some(wscore::UsageError::InvalidHeader));
    let refused = Accept::new().header("Bad Name", "x").answer(&request, None).err();
    assert_eq!(refused, Some(wscore::UsageError::InvalidHeader));
    // No compression unless a configuration is given and the client offered it.
    let answer = Accept::new().answer(&request, Some(&DeflateConfig::default())).unwrap();
    assert_eq!(answer.deflate(), None);
    assert!(answer.headers().all(|(name, _)| name != "Sec-WebSocket-Extensions"));
}

// ===== Client parts against server parts ===================================

/// Sends `request` through the server parts and the answer back through the
/// client check: the agreed subprotocol and deflate parameters of both ends.
fn round_trip(
    request: &ClientRequest,
    deflate: Option<&DeflateConfig>,
) -> (Option<String>, Option<DeflateParams>, Response) {
    let server_request =
        Request::from_parts(request.method(), request.version(), request.protocol(), request.path(), request.headers())
            .unwrap_or_else(|e| panic!("{:?} refused: {e}", request.version()));
    for (name, value) in request.headers() {
        assert_eq!(server_request.header(name), Some(value.as_bytes()), "{name} reaches the server");
    }
    let offered = server_request.protocols().next().map(String::from);
    let accept = match &offered {
        Some(p) => Accept::new().protocol(p),
        None => Accept::new(),
    };
    let answer = accept.answer(&server_request, deflate).unwrap();
    let response = request.check_response(answer.status(), request.version(), answer.headers()).unwrap();
    assert_eq!(response.protocol(), answer.protocol(), "both ends agree on the subprotocol");
    assert_eq!(response.deflate(), answer.deflate(), "both ends agree on deflate");
    (answer.protocol().map(String::from), answer.deflate().copied(), response)
}

#[test]
fn client_parts_round_trip_through_server_parts() {
    let deflates = [
        None,
        Some(DeflateConfig::default()),
        Some(deflate_config(|c| {
            c.server_no_context_takeover = true;
            c.server_max_window_bits = Some(10);
        })),
    ];
    for deflate in &deflates {
        let hs = ClientHandshake::new("wss://example.com:8443/chat?room=1")
            .unwrap()
            .protocol("chat")
            .unwrap()
            .header("Origin", "https://example.com")
            .unwrap();
        for request in [hs.http11_request([9; 16], deflate.as_ref()), hs.http2_request(deflate.as_ref())] {
            assert!(request.headers().any(|field| field == ("Origin", "https://example.com")));
            let (protocol, params, response) = round_trip(&request, deflate.as_ref());
            assert_eq!(protocol.as_deref(), Some("chat"));
            assert_eq!(params.is_some(), deflate.is_some(), "{deflate:?}");
            let expected = if request.version() == HttpVersion::Http2 { 200 } else { 101 };
            assert_eq!(response.status(), expected);
            assert_eq!(response.body(), b"");
        }
        // Each version's success status only.
        let h2 = hs.http2_request(deflate.as_ref());
        let refused = h2.check_response(101, HttpVersion::Http2, [("sec-websocket-protocol", "chat")]);
        assert_eq!(refused.err(), Some(HandshakeError::Status(101)));
        // Nothing offered, nothing chosen.
        let plain = ClientHandshake::new("ws://a/").unwrap();
        assert_eq!(round_trip(&plain.http2_request(None), None).0, None);
    }
}

#[test]
fn http2_client_checks_the_answer() {
    let request = ClientHandshake::new("wss://a/").unwrap().http2_request(Some(&DeflateConfig::default()));
    let check = |status, version, fields: &[(&str, &str)]| request.check_response(status, version, fields.to_vec());
    let ok = check(200, HttpVersion::Http2, &[("sec-websocket-extensions", "permessage-deflate")]).unwrap();
    assert_eq!((ok.version(), ok.deflate()), (HttpVersion::Http2, Some(&DeflateParams::default())));
    let cases = [
        (101, HttpVersion::Http2, ("x", "y"), HandshakeError::Status(101)),
        (200, HttpVersion::Http11, ("x", "y"), HandshakeError::HttpVersion),
        (200, HttpVersion::Http2, ("upgrade", "websocket"), HandshakeError::Upgrade),
        (200, HttpVersion::Http2, ("connection", "upgrade"), HandshakeError::Connection),
        (200, HttpVersion::Http2, ("sec-websocket-protocol", "chat"), HandshakeError::Protocol),
        (200, HttpVersion::Http2, ("sec-websocket-extensions", "permessage-deflate; x"), HandshakeError::Extension),
    ];
    for (status, version, field, expected) in cases {
        assert_eq!(check(status, version, &[field]).err(), Some(expected), "{status} {version:?} {field:?}");
    }
}

#[test]
fn client_parts_are_what_the_built_in_client_sends() {
    // The built-in client's request, through the server parts; its answer,
    // through the built-in client.
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    let hs = ClientHandshake::new("ws://example.com/chat").unwrap().protocol("chat").unwrap();
    let mut client = Connection::client(hs.clone(), config, NOW).unwrap();
    let sent = output(&mut client);
    let mut storage = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Request::new(&mut storage);
    assert!(parsed.parse(&sent).unwrap().is_complete());
    let fields: Vec<_> = parsed.headers.iter().map(|h| (h.name, h.value)).collect();
    let request = Request::from_parts("GET", HttpVersion::Http11, None, parsed.path.unwrap(), fields.clone()).unwrap();

    // The same request from the client parts, but for the key.
    let parts = hs.http11_request([0; 16], Some(&DeflateConfig::default()));
    let owned = |(n, v): (&str, &[u8])| (n.to_string(), v.to_vec());
    let keyless = |(n, _): &(String, Vec<u8>)| n != "Sec-WebSocket-Key";
    let sent: Vec<_> = fields.into_iter().map(owned).filter(keyless).collect();
    let from_parts: Vec<_> = parts.headers().map(|(n, v)| owned((n, v.as_bytes()))).filter(keyless).collect();
    assert_eq!(sent, from_parts);

    let answer = Accept::new().protocol("chat").answer(&request, Some(&DeflateConfig::default())).unwrap();
    let response = head(answer.status(), answer.headers());
    assert_eq!(client.receive(NOW, &response), response.len());
    match client.poll_event() {
        Some(Event::Connected(response)) => {
            assert_eq!((response.protocol(), response.deflate()), (Some("chat"), answer.deflate()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_check_of_parts_agrees_with_the_built_in_client() {
    let hs = ClientHandshake::new("ws://a/").unwrap().protocol("chat").unwrap();
    let request = hs.http11_request([0; 16], None);
    let accept = accept_key(b"AAAAAAAAAAAAAAAAAAAAAA==");
    let accept = std::str::from_utf8(&accept).unwrap();
    let good = vec![("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)];
    let with = |extra| [good.clone(), vec![extra]].concat();
    let replaced =
        |name: &str, value| good.iter().map(|&(n, v)| if n == name { (n, value) } else { (n, v) }).collect::<Vec<_>>();
    type Case<'a> = (u16, Vec<(&'a str, &'a str)>, Option<HandshakeError>);
    let cases: Vec<Case> = vec![
        (101, good.clone(), None),
        (101, with(("Sec-WebSocket-Protocol", "chat")), None),
        (403, good.clone(), Some(HandshakeError::Status(403))),
        (200, good.clone(), Some(HandshakeError::Status(200))),
        (101, replaced("Upgrade", "h2c"), Some(HandshakeError::Upgrade)),
        (101, replaced("Connection", "close"), Some(HandshakeError::Connection)),
        (101, replaced("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), Some(HandshakeError::Accept)),
        (101, with(("Sec-WebSocket-Accept", accept)), Some(HandshakeError::Accept)),
        (101, with(("Sec-WebSocket-Protocol", "other")), Some(HandshakeError::Protocol)),
        (101, with(("Sec-WebSocket-Extensions", "permessage-deflate")), Some(HandshakeError::Extension)),
    ];
    for (status, fields, expected) in cases {
        // The built-in client with the same key (all-zero entropy).
        let mut config = Config::default();
        config.entropy = Some(|buf: &mut [u8]| buf.fill(0));
        let mut client = Connection::client(hs.clone(), config, NOW).unwrap();
        output(&mut client);
        let answer = head(status, fields.iter().copied());
        assert_eq!(client.receive(NOW, &answer), answer.len());
        if status != 101 {
            // A refusal is handed over whole before the connection closes.
            assert!(matches!(client.poll_event(), Some(Event::Rejected(r)) if r.status() == status));
        }
        let built_in = match client.poll_event() {
            Some(Event::Connected(response)) => Ok(response.protocol().map(String::from)),
            Some(Event::Closed(closed)) => match closed.error {
                Some(Error::Handshake(e)) => Err(e),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let from_parts = request
            .check_response(status, HttpVersion::Http11, fields.iter().copied())
            .map(|r| r.protocol().map(String::from));
        assert_eq!(from_parts, built_in, "{status} {fields:?}");
        assert_eq!(from_parts.err(), expected, "{status} {fields:?}");
    }
}
