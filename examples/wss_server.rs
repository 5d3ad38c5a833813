//! A TLS echo server (`wss://`) on tokio: each connection gets its own
//! task, which does the TLS handshake and the WebSocket handshake
//! (`wscore::tokio::accept_tls`, both bounded by the handshake timeout),
//! then sends every message back.
//!
//! ```text
//! cargo run --example wss_server --features tokio,rustls -- [ADDRESS] [CERT.pem KEY.pem]
//! ```
//!
//! `ADDRESS` defaults to `127.0.0.1:9443`. With a certificate chain and its
//! private key in PEM files, it serves those; without, it makes a
//! self-signed certificate for `localhost` and `127.0.0.1` at start and
//! writes it to `wss_server-cert.pem` in the temporary directory, for a
//! client to trust. For example, with the `websocat` client:
//!
//! ```text
//! SSL_CERT_FILE=/tmp/wss_server-cert.pem websocat wss://localhost:9443/
//! ```
//!
//! or from Rust, trusting only that certificate:
//!
//! ```text
//! let mut roots = RootCertStore::empty();
//! roots.add(CertificateDer::from_pem_file(path)?)?;
//! let tls = Arc::new(wscore::tls::client_config(roots));
//! wscore::tokio::connect_with_tls("wss://localhost:9443/", Config::default(), tls).await?;
//! ```

use std::io;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use wscore::deflate::DeflateConfig;
use wscore::tls::rustls::pki_types::pem::PemObject;
use wscore::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use wscore::tls::rustls::{self, ServerConfig};
use wscore::{Accept, Config};

#[tokio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, files) = match args.as_slice() {
        [] => ("127.0.0.1:9443", None),
        [addr] => (addr.as_str(), None),
        [cert, key] => ("127.0.0.1:9443", Some((cert, key))),
        [addr, cert, key] => (addr.as_str(), Some((cert, key))),
        _ => return Err(invalid("usage: wss_server [ADDRESS] [CERT.pem KEY.pem]")),
    };
    let (chain, key) = match files {
        Some((cert, key)) => load(cert, key)?,
        None => self_signed()?,
    };
    let tls = server_config(chain, key)?;

    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());

    let listener = TcpListener::bind(addr).await?;
    eprintln!("wss echo server listening on wss://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let (tls, config) = (Arc::clone(&tls), config.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(stream, tls, config).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn serve(stream: TcpStream, tls: Arc<ServerConfig>, config: Config) -> Result<(), wscore::tokio::Error> {
    stream.set_nodelay(true)?;
    let mut ws = wscore::tokio::accept_tls(stream, tls, config, |_request| Ok(Accept::new())).await?;
    // The stream ends after the closing handshake; the TLS session then
    // ends with close_notify.
    while let Some(message) = ws.next().await {
        ws.send_owned(message?).await?;
    }
    Ok(())
}

/// The server's TLS configuration: rustls' safe defaults on the ring
/// provider, and ALPN `http/1.1`, the protocol a WebSocket upgrade uses.
fn server_config(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(invalid)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate chain and its key from PEM files.
fn load(cert: &str, key: &str) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("{cert}: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(format!("{key}: {e}")))?;
    Ok((chain, key))
}

/// A self-signed certificate for this machine's loopback names, made now
/// and written out for clients to trust.
fn self_signed() -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names).map_err(invalid)?;
    let path = std::env::temp_dir().join("wss_server-cert.pem");
    std::fs::write(&path, cert.pem())?;
    eprintln!("self-signed certificate for localhost and 127.0.0.1 written to {}", path.display());
    let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    Ok((vec![cert.der().clone()], key))
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}
