//! Who may do what: the REST API's and the host's keys (compared in constant
//! time), the `Origin` rule for browser WebSockets, and the client's address
//! behind a trusted proxy. docs/security.md lists the rules these implement.

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HOST, ORIGIN};
use hyper::http::uri::Authority;

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials of an `Authorization: Bearer TOKEN` header. The scheme is
/// matched in any case (RFC 9110 §11.1); surrounding spaces are ignored.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether a WebSocket upgrade may go ahead. Clients without `Origin` (bots,
/// apps, backends) may; a browser page may when its origin is listed in
/// `allowed` (`*` allows any), or when it is `http://HOST` for the `Host` it
/// asked, and that host is an IP address or `localhost`: a page this node
/// served itself. A host *name* must be listed, since a name can be pointed
/// at any address (DNS rebinding).
pub(crate) fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(authority) = host.parse::<Authority>() else {
        return false;
    };
    let name = authority.host();
    let literal = name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
    literal
        && origin
            .strip_prefix("http://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// The client's address: the peer's, or, when the peer is a trusted proxy
/// (loopback always is), the nearest untrusted address in `X-Forwarded-For`
/// (proxies append the address they saw, so the entries a client wrote
/// itself are further left and never chosen over a proxy's).
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let is_trusted =
        |ip: &IpAddr| ip.is_loopback() || trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for entry in value.rsplit(',') {
            match entry.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
                Ok(ip) => {
                    client = ip;
                    if !is_trusted(&ip) {
                        return ip;
                    }
                }
                Err(_) => return client,
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_scheme_in_any_case() {
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer k1")])),
            Some("k1")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer  k1 ")])),
            Some("k1")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "BEARER k1")])),
            Some("k1")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic k1")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
    }

    #[test]
    fn origins() {
        let ok = |origin: &str, host: &str, allowed: &[String]| {
            origin_allowed(&headers(&[("origin", origin), ("host", host)]), allowed)
        };
        assert!(origin_allowed(&headers(&[("host", "a:1")]), &[]));
        assert!(ok("http://127.0.0.1:8080", "127.0.0.1:8080", &[]));
        assert!(ok("http://192.168.1.20:8080", "192.168.1.20:8080", &[]));
        assert!(ok("http://[::1]:8080", "[::1]:8080", &[]));
        assert!(ok("http://localhost:8080", "localhost:8080", &[]));
        // DNS rebinding: a name that agrees with itself is not enough.
        assert!(!ok("http://evil.example:8080", "evil.example:8080", &[]));
        // The scheme and the port count.
        assert!(!ok("https://127.0.0.1:8080", "127.0.0.1:8080", &[]));
        assert!(!ok("http://127.0.0.1:9999", "127.0.0.1:8080", &[]));
        assert!(!ok("http://evil", "127.0.0.1:8080", &[]));
        let listed = vec!["https://games.school.example/".to_owned()];
        assert!(ok(
            "https://games.school.example",
            "games.school.example",
            &listed
        ));
        assert!(!ok(
            "http://games.school.example",
            "games.school.example",
            &listed
        ));
        assert!(ok("http://anything", "x", &["*".to_owned()]));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let student: IpAddr = "10.1.2.3".parse().unwrap();
        let fwd = headers(&[("x-forwarded-for", "6.6.6.6, 10.1.2.3")]);
        assert_eq!(client_addr(local, &fwd, &[]), student);
        assert_eq!(
            client_addr(student, &fwd, &[]),
            student,
            "untrusted peers name themselves"
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let two = headers(&[("x-forwarded-for", "6.6.6.6, 10.1.2.3, 10.0.0.2")]);
        assert_eq!(client_addr(local, &two, &[proxy]), student);
        assert_eq!(client_addr(local, &headers(&[]), &[]), local);
        let junk = headers(&[("x-forwarded-for", "junk, 10.1.2.3")]);
        assert_eq!(client_addr(local, &junk, &[]), student);
        // A dual-stack listener's view of IPv4 peers.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client_addr(mapped, &fwd, &[]), student);
        let mapped_proxy: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(client_addr(mapped_proxy, &two, &[proxy]), student);
    }
}
