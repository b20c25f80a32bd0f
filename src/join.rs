//! Joining from the classroom: the address students' devices can reach this
//! node at, for the host page (`GET /api/join`), and the QR code of that
//! address with a session's join code (`GET /join.svg?code=NNNNNN`).
//!
//! The address, first that applies:
//! 1. `--public-url`, as given (behind nginx, or under a DNS name);
//! 2. the address the host page itself was opened at (its `Host` header),
//!    when that is an IP address other than loopback: it reaches this node;
//! 3. the `--bind` address, when it is one other than loopback or 0.0.0.0;
//! 4. with `--bind 0.0.0.0` (or `::`), this machine's network address
//!    ([`lan_address`]), asked of the operating system at each request, so a
//!    laptop that changed networks shows its new one;
//! 5. otherwise none: the node listens on loopback only and students' devices
//!    cannot reach it, which the host page says, with the way out.
//!
//! `/join.svg` does not look the code up: it draws whatever 6 digits it is
//! given, so it tells nobody which codes are live (codes are guarded against
//! guessing, docs/security.md). It is sent with `Cache-Control: no-store`,
//! and neither route logs its query.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::config::Config;
use crate::http::{Body, text};

/// Where students join, as the host page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JoinAddress {
    /// The player page's URL, ending in `/` (`http://192.168.1.20:8080/`).
    pub(crate) url: String,
    /// False when only this computer can open `url` (loopback).
    pub(crate) reachable: bool,
    /// Where `url` came from: `public_url`, `page`, `bind`, `interface` or
    /// `loopback`.
    pub(crate) source: &'static str,
}

impl JoinAddress {
    /// What the QR code holds: the player page with the code filled in.
    pub(crate) fn with_code(&self, code: &str) -> String {
        format!("{}?code={code}", self.url)
    }
}

/// The join address for a request whose `Host` header is `host`.
pub(crate) fn join_address(config: &Config, host: Option<&str>) -> JoinAddress {
    let port = config.port;
    let at = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}/"),
    };
    if let Some(url) = &config.public_url {
        return JoinAddress {
            url: url.clone(),
            reachable: true,
            source: "public_url",
        };
    }
    if let Some((ip, host)) = host.and_then(|h| host_ip(h).map(|ip| (ip, h)))
        && !ip.is_loopback()
        && !ip.is_unspecified()
    {
        return JoinAddress {
            url: format!("http://{host}/"),
            reachable: true,
            source: "page",
        };
    }
    if !config.bind.is_loopback() && !config.bind.is_unspecified() {
        return JoinAddress {
            url: at(config.bind),
            reachable: true,
            source: "bind",
        };
    }
    if config.bind.is_unspecified()
        && let Some(ip) = lan_address(config.bind.is_ipv6())
    {
        return JoinAddress {
            url: at(ip),
            reachable: true,
            source: "interface",
        };
    }
    let local = if config.bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        config.bind
    };
    JoinAddress {
        url: at(local),
        reachable: false,
        source: "loopback",
    }
}

/// The IP address in a `Host` header (`192.168.1.20:8080`, `[fe80::1]:80`),
/// if it names one rather than a host name.
fn host_ip(host: &str) -> Option<IpAddr> {
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let ip = host.rsplit_once(':').map_or(host, |(ip, _)| ip);
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// This machine's address on its network, for a node bound to every
/// interface. The interfaces come from `getifaddrs` (the `if-addrs` crate);
/// loopback, link-local (169.254/16, fe80::/10) and the bridges of containers
/// and virtual machines are left out, and an IPv4 address in the private
/// ranges (a school or home network) is preferred. Among those, the one the
/// operating system would send from to reach another network wins: a UDP
/// socket "connected" to a documentation address (192.0.2.1) is given that
/// source address by the routing table, and nothing is sent. IPv6 addresses
/// are used only when there is no IPv4 one and `ipv6` (bound to `::`).
pub(crate) fn lan_address(ipv6: bool) -> Option<IpAddr> {
    let interfaces = if_addrs::get_if_addrs().ok()?;
    let candidates: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| !virtual_interface(&i.name))
        .map(|i| i.ip())
        .filter(|ip| usable(*ip))
        .collect();
    let routed = routed_v4();
    let rank = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) if Some(*v4) == routed && v4.is_private() => 0,
        IpAddr::V4(v4) if v4.is_private() => 1,
        IpAddr::V4(_) => 2,
        IpAddr::V6(_) => 3,
    };
    candidates
        .into_iter()
        .filter(|ip| ip.is_ipv4() || ipv6)
        .min_by_key(rank)
}

/// Not loopback, not unspecified, not link-local.
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified() && !v4.is_link_local(),
        IpAddr::V6(v6) => {
            !v6.is_loopback()
                && !v6.is_unspecified()
                && (v6.segments()[0] & 0xffc0) != 0xfe80
                && v6.to_ipv4_mapped().is_none()
        }
    }
}

/// Interfaces of containers and virtual machines, which students' devices
/// cannot reach.
fn virtual_interface(name: &str) -> bool {
    [
        "docker", "br-", "veth", "virbr", "vboxnet", "vmnet", "lxc", "lxd", "cni", "flannel",
        "podman",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The IPv4 source address the routing table picks for another network
/// (see [`lan_address`]); nothing is sent.
fn routed_v4() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4),
        _ => None,
    }
}

/// The browser origin of a `--public-url` (`https://games.school.example`),
/// as an `Origin` header names it: scheme and authority, the default port
/// left out. The pages students open there may open game sockets.
pub(crate) fn public_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

fn host_header<B>(req: &Request<B>) -> Option<&str> {
    req.headers().get(HOST).and_then(|h| h.to_str().ok())
}

/// `GET /api/join`: the [`JoinAddress`] as JSON, not cached.
pub(crate) fn info<B>(config: &Config, req: &Request<B>) -> Response<Body> {
    let address = join_address(config, host_header(req));
    Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store")
        .body(Body::from(
            serde_json::to_string(&address).unwrap_or_default(),
        ))
        .unwrap_or_default()
}

/// `GET /join.svg?code=NNNNNN`: the QR code of the join address with that
/// code, as an SVG picture (dark modules as one path, four modules of quiet
/// zone), not cached.
pub(crate) fn qr<B>(config: &Config, req: &Request<B>) -> Response<Body> {
    let code = req.uri().query().unwrap_or("").split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "code").then_some(v)
    });
    let Some(code) = code.filter(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())) else {
        return text(
            StatusCode::BAD_REQUEST,
            "/join.svg needs ?code= with the 6-digit join code",
        );
    };
    let address = join_address(config, host_header(req));
    match qr_svg(&address.with_code(code)) {
        Some(svg) => Response::builder()
            .header(CONTENT_TYPE, "image/svg+xml")
            .header(CACHE_CONTROL, "no-store")
            .body(Body::from(svg))
            .unwrap_or_default(),
        None => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the join address is too long for a QR code",
        ),
    }
}

/// The QR code of `data` as SVG text (error correction M, black on white).
pub(crate) fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: [u8; 4], public_url: Option<&str>) -> Config {
        let mut c = Config::for_dirs("games", "data");
        c.bind = IpAddr::from(bind);
        c.port = 8080;
        c.public_url = public_url.map(str::to_owned);
        c
    }

    #[test]
    fn the_address_comes_from_public_url_then_the_page_then_bind() {
        let c = config([127, 0, 0, 1], Some("https://games.school.example/"));
        let a = join_address(&c, Some("127.0.0.1:8080"));
        assert_eq!(a.url, "https://games.school.example/");
        assert_eq!(
            a.with_code("482913"),
            "https://games.school.example/?code=482913"
        );
        assert!(a.reachable);

        let c = config([127, 0, 0, 1], None);
        let a = join_address(&c, Some("127.0.0.1:8080"));
        assert_eq!((a.reachable, a.source), (false, "loopback"));
        assert_eq!(a.url, "http://127.0.0.1:8080/");
        let a = join_address(&c, Some("localhost:8080"));
        assert_eq!((a.reachable, a.source), (false, "loopback"));

        let c = config([0, 0, 0, 0], None);
        let a = join_address(&c, Some("10.1.2.3:8080"));
        assert_eq!(
            (a.url.as_str(), a.source),
            ("http://10.1.2.3:8080/", "page")
        );
        let a = join_address(&c, Some("[fd00::5]:8080"));
        assert_eq!(
            (a.url.as_str(), a.source),
            ("http://[fd00::5]:8080/", "page")
        );

        let c = config([192, 168, 5, 9], None);
        let a = join_address(&c, Some("school-laptop:8080"));
        assert_eq!(
            (a.url.as_str(), a.source),
            ("http://192.168.5.9:8080/", "bind")
        );
    }

    #[test]
    fn a_public_url_gives_its_origin() {
        let origin = |u: &str| public_origin(u).unwrap_or_default();
        assert_eq!(
            origin("https://Games.School.example/recess/"),
            "https://games.school.example"
        );
        assert_eq!(
            origin("https://games.example:443/"),
            "https://games.example"
        );
        assert_eq!(origin("http://192.0.2.10:8123/"), "http://192.0.2.10:8123");
        assert_eq!(origin("http://10.0.0.1:80/"), "http://10.0.0.1");
    }

    #[test]
    fn host_headers_name_an_address_or_not() {
        assert_eq!(
            host_ip("192.168.1.2:80"),
            Some(IpAddr::from([192, 168, 1, 2]))
        );
        assert_eq!(host_ip("192.168.1.2"), Some(IpAddr::from([192, 168, 1, 2])));
        assert_eq!(host_ip("[::1]:80"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(host_ip("[::1]x"), None);
        assert_eq!(host_ip("games.example:80"), None);
        assert_eq!(host_ip("localhost"), None);
    }

    #[test]
    fn a_found_network_address_is_never_loopback_or_link_local() {
        if let Some(ip) = lan_address(true) {
            assert!(usable(ip), "{ip}");
        }
        assert!(!usable(IpAddr::from([169, 254, 1, 1])));
        assert!(!usable("fe80::1".parse().unwrap()));
        assert!(virtual_interface("docker0") && !virtual_interface("wlp2s0"));
    }
}
