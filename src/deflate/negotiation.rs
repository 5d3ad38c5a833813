//! permessage-deflate negotiation (RFC 7692 §5 and §7.1): the client's
//! offers, the server's choice and answer, and the client's check of it.
//!
//! A server declines an offer it cannot parse (unknown or repeated
//! parameter, window bits outside 8–15 or with leading zeros, a value on a
//! parameter that takes none) and looks at the next; a client fails the
//! connection on any such answer (§5: "the client MUST _Fail the WebSocket
//! Connection_").

use alloc::string::String;
use core::fmt::Write as _;

use super::{DeflateConfig, DeflateParams, MAX_WINDOW_BITS};
use crate::http::trim;

const NAME: &str = "permessage-deflate";

/// The parameters of one offer or answer element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// Absent, present without a value (`Some(None)`), or with one.
    client_max_window_bits: Option<Option<u8>>,
}

/// Parses one list element of `Sec-WebSocket-Extensions`: `None` if it is
/// another extension, `Some(Err(()))` if it is an invalid permessage-deflate.
pub(crate) fn parse_element(element: &[u8]) -> Option<Result<Element, ()>> {
    let mut parts = element.split(|&b| b == b';').map(trim);
    if !parts.next()?.eq_ignore_ascii_case(NAME.as_bytes()) {
        return None;
    }
    let mut e = Element::default();
    for param in parts {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(i) => (trim(&param[..i]), Some(trim(&param[i + 1..]))),
            None => (param, None),
        };
        let ok = match name {
            b"server_no_context_takeover" => {
                value.is_none() && !core::mem::replace(&mut e.server_no_context_takeover, true)
            }
            b"client_no_context_takeover" => {
                value.is_none() && !core::mem::replace(&mut e.client_no_context_takeover, true)
            }
            b"server_max_window_bits" => match value.map(window_bits) {
                Some(Ok(bits)) if e.server_max_window_bits.is_none() => {
                    e.server_max_window_bits = Some(bits);
                    true
                }
                _ => false,
            },
            b"client_max_window_bits" => {
                let bits = match value.map(window_bits) {
                    None => None,
                    Some(Ok(bits)) => Some(bits),
                    Some(Err(())) => return Some(Err(())),
                };
                e.client_max_window_bits.replace(bits).is_none()
            }
            _ => false,
        };
        if !ok {
            return Some(Err(()));
        }
    }
    Some(Ok(e))
}

/// A window-bits value: a decimal 8–15 without leading zeros, optionally
/// in quotes (a quoted-string is allowed wherever a token is, §5.1).
fn window_bits(value: &[u8]) -> Result<u8, ()> {
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    match value {
        [b'8'] => Ok(8),
        [b'9'] => Ok(9),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + (d - b'0')),
        _ => Err(()),
    }
}

fn write_element(e: &Element) -> String {
    let mut out = String::from(NAME);
    if e.server_no_context_takeover {
        out.push_str("; server_no_context_takeover");
    }
    if e.client_no_context_takeover {
        out.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = e.server_max_window_bits {
        let _ = write!(out, "; server_max_window_bits={bits}");
    }
    match e.client_max_window_bits {
        Some(Some(bits)) => {
            let _ = write!(out, "; client_max_window_bits={bits}");
        }
        Some(None) => out.push_str("; client_max_window_bits"),
        None => {}
    }
    out
}

/// The client's primary offer, from its configuration. It always offers
/// `client_max_window_bits`: we can honour any limit the server sets.
fn primary_offer(config: &DeflateConfig) -> Element {
    Element {
        server_no_context_takeover: config.server_no_context_takeover,
        client_no_context_takeover: config.client_no_context_takeover,
        server_max_window_bits: config.server_max_window_bits,
        client_max_window_bits: Some(config.client_max_window_bits),
    }
}

/// The plain fallback offer, sent after a primary offer with parameters.
fn fallback_offer(config: &DeflateConfig) -> Option<Element> {
    let fallback = Element { client_max_window_bits: Some(None), ..Element::default() };
    (config.fallback_offer && primary_offer(config) != fallback).then_some(fallback)
}

/// The value of the client's `Sec-WebSocket-Extensions` header.
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = write_element(&primary_offer(config));
    if let Some(fallback) = fallback_offer(config) {
        offer.push_str(", ");
        offer.push_str(&write_element(&fallback));
    }
    offer
}

/// Server: picks the first acceptable permessage-deflate offer among the
/// list elements of the request's `Sec-WebSocket-Extensions` headers and
/// returns the agreed parameters and the answer to send.
pub(crate) fn server_answer<'a>(
    elements: impl Iterator<Item = &'a [u8]>,
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    let offer = elements.filter_map(parse_element).find_map(Result::ok)?;
    let server_bits = match (offer.server_max_window_bits, config.server_max_window_bits) {
        (Some(asked), Some(ours)) => Some(asked.min(ours)),
        (asked, ours) => asked.or(ours),
    };
    // We may only ask the client to limit its window if it offered to.
    let client_bits = offer
        .client_max_window_bits
        .and_then(|offered| config.client_max_window_bits.map(|ours| ours.min(offered.unwrap_or(MAX_WINDOW_BITS))));
    let answer = Element {
        server_no_context_takeover: offer.server_no_context_takeover || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits.map(Some),
    };
    let params = DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover,
        server_max_window_bits: server_bits.unwrap_or(MAX_WINDOW_BITS),
        client_max_window_bits: client_bits.or(offer.client_max_window_bits.flatten()).unwrap_or(MAX_WINDOW_BITS),
    };
    Some((params, write_element(&answer)))
}

/// Client: checks the server's answer (the list elements of the response's
/// `Sec-WebSocket-Extensions`) against what we offered. `Ok(None)`: no
/// extension; `Err(())`: the connection must fail.
pub(crate) fn check_answer<'a>(
    mut elements: impl Iterator<Item = &'a [u8]>,
    config: Option<&DeflateConfig>,
) -> Result<Option<DeflateParams>, ()> {
    let Some(first) = elements.next() else {
        return Ok(None);
    };
    let config = config.ok_or(())?;
    if elements.next().is_some() {
        return Err(());
    }
    let answer = parse_element(first).ok_or(())??;
    let fits = |offer: &Element| {
        (!offer.server_no_context_takeover || answer.server_no_context_takeover)
            && match (offer.server_max_window_bits, answer.server_max_window_bits) {
                (Some(asked), Some(got)) => got <= asked,
                (Some(_), None) => false,
                (None, _) => true,
            }
            && match (offer.client_max_window_bits, answer.client_max_window_bits) {
                (_, None) => true,
                (_, Some(None)) | (None, Some(Some(_))) => false,
                (Some(offered), Some(Some(got))) => got <= offered.unwrap_or(MAX_WINDOW_BITS),
            }
    };
    if !fits(&primary_offer(config)) && !fallback_offer(config).is_some_and(|f| fits(&f)) {
        return Err(());
    }
    Ok(Some(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        // Offering it was a promise to reset our context anyway (§7.1.1.2).
        client_no_context_takeover: answer.client_no_context_takeover || config.client_no_context_takeover,
        server_max_window_bits: answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
        client_max_window_bits: answer
            .client_max_window_bits
            .flatten()
            .or(config.client_max_window_bits)
            .unwrap_or(MAX_WINDOW_BITS),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn elements(header: &str) -> Vec<&[u8]> {
        header.as_bytes().split(|&b| b == b',').map(trim).filter(|e| !e.is_empty()).collect()
    }

    fn answer(offer: &str, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        server_answer(elements(offer).into_iter(), config)
    }

    #[test]
    fn parses_every_parameter_and_rejects_invalid_ones() {
        let e = parse_element(
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
              server_max_window_bits=10; client_max_window_bits",
        );
        let e = e.unwrap().unwrap();
        assert!(e.server_no_context_takeover && e.client_no_context_takeover);
        assert_eq!((e.server_max_window_bits, e.client_max_window_bits), (Some(10), Some(None)));
        assert_eq!(parse_element(b"x-webkit-deflate-frame"), None);
        assert_eq!(
            parse_element(b"permessage-deflate; client_max_window_bits=\"12\"")
                .unwrap()
                .unwrap()
                .client_max_window_bits,
            Some(Some(12))
        );
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=x",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=abc",
        ] {
            assert_eq!(parse_element(bad.as_bytes()), Some(Err(())), "{bad}");
        }
    }

    #[test]
    fn server_table() {
        let cfg = DeflateConfig::default();
        let cases: &[(&str, &str)] = &[
            ("permessage-deflate", "permessage-deflate"),
            ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
            ("permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"),
            ("permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"),
            ("permessage-deflate; server_max_window_bits=9", "permessage-deflate; server_max_window_bits=9"),
            // An invalid first offer is declined, the fallback taken.
            ("permessage-deflate; bogus, permessage-deflate", "permessage-deflate"),
            ("foo, permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=8"),
        ];
        for (offer, expected) in cases {
            assert_eq!(answer(offer, &cfg).map(|a| a.1).as_deref(), Some(*expected), "{offer}");
        }
        assert_eq!(answer("permessage-deflate; bogus", &cfg), None);
        assert_eq!(answer("x-other", &cfg), None);
        let (params, _) = answer("permessage-deflate; server_max_window_bits=9", &cfg).unwrap();
        assert_eq!(params.server_max_window_bits, 9);
    }

    #[test]
    fn server_config_adds_its_own_limits() {
        let cfg = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(12),
            client_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        let (params, text) =
            answer("permessage-deflate; client_max_window_bits; server_max_window_bits=14", &cfg).unwrap();
        assert_eq!(
            text,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=10"
        );
        assert_eq!((params.server_max_window_bits, params.client_max_window_bits), (12, 10));
        // Without the client's client_max_window_bits we must not ask for it.
        let (_, text) = answer("permessage-deflate", &cfg).unwrap();
        assert!(!text.contains("client_max_window_bits"), "{text}");
    }

    #[test]
    fn client_offers() {
        assert_eq!(client_offer(&DeflateConfig::default()), "permessage-deflate; client_max_window_bits");
        let cfg = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        assert_eq!(
            client_offer(&cfg),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits, \
             permessage-deflate; client_max_window_bits"
        );
    }

    #[test]
    fn client_checks_answers() {
        let check = |answer: &str, cfg: &DeflateConfig| check_answer(elements(answer).into_iter(), Some(cfg));
        let plain = DeflateConfig::default();
        assert_eq!(check("", &plain), Ok(None));
        assert_eq!(check("permessage-deflate", &plain), Ok(Some(DeflateParams::default())));
        let p =
            check("permessage-deflate; client_max_window_bits=9; server_no_context_takeover", &plain).unwrap().unwrap();
        assert_eq!((p.client_max_window_bits, p.server_no_context_takeover), (9, true));
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; unknown",
            "permessage-deflate, permessage-deflate",
            "x-other",
            "permessage-deflate; server_max_window_bits=16",
        ] {
            assert_eq!(check(bad, &plain), Err(()), "{bad}");
        }
        assert_eq!(check_answer(elements("permessage-deflate").into_iter(), None), Err(()));
        // We asked for a window of 10 without fallback: a larger one fails.
        let strict =
            DeflateConfig { server_max_window_bits: Some(10), fallback_offer: false, ..DeflateConfig::default() };
        assert_eq!(check("permessage-deflate; server_max_window_bits=11", &strict), Err(()));
        assert_eq!(check("permessage-deflate", &strict), Err(()));
        assert!(check("permessage-deflate; server_max_window_bits=8", &strict).unwrap().is_some());
        // With the fallback offered, a plain answer is the fallback's.
        let fallback = DeflateConfig { server_max_window_bits: Some(10), ..DeflateConfig::default() };
        assert_eq!(check("permessage-deflate", &fallback), Ok(Some(DeflateParams::default())));
        // Our own offered client limit holds even if the answer omits it.
        let own = DeflateConfig { client_max_window_bits: Some(11), ..DeflateConfig::default() };
        assert_eq!(check("permessage-deflate", &own).unwrap().unwrap().client_max_window_bits, 11);
    }
}
