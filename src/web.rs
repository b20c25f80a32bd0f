//! The browser pages, embedded in the binary from `web/` (no build step),
//! and folder games' `/custom/` files. Every answer carries the page headers
//! ([`page_headers`]): a Content-Security-Policy, `nosniff`, no referrer, no
//! framing.

use std::path::{Path, PathBuf};

use hyper::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, HeaderValue, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{Request, Response, StatusCode};
use rust_embed::RustEmbed;

use crate::http::{Body, text};
use crate::node::Node;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Pages;

/// A page or one of its files (`/`, `/host`, `/recess.js`, ...).
pub(crate) fn serve<B>(_node: &Node, req: &Request<B>) -> Response<Body> {
    let response = page(req.uri().path());
    page_headers(response, req, Kind::Page)
}

fn page(path: &str) -> Response<Body> {
    let file = match path {
        "/" => "index.html",
        "/host" | "/host/" => "host.html",
        p => p.trim_start_matches('/'),
    };
    let Some(asset) = Pages::get(file) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    Response::builder()
        .header(CONTENT_TYPE, content_type(file))
        .header(CACHE_CONTROL, "no-cache")
        .body(Body::from(asset.data.into_owned()))
        .unwrap_or_default()
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// `/custom/NAME/FILE`: a folder game's own client files (`client.html`,
/// scripts, styles, images), read from the games folder on each request so a
/// save is live at once. Only plain file names inside the game's folder.
pub(crate) fn serve_custom<B>(node: &Node, req: &Request<B>) -> Response<Body> {
    let response = custom_file(node, req.uri().path());
    page_headers(response, req, Kind::Custom)
}

fn custom_file(node: &Node, path: &str) -> Response<Body> {
    let rest = path.trim_start_matches("/custom/");
    let Some((game, file)) = rest.split_once('/') else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let allowed = matches!(
        file.rsplit('.').next(),
        Some("html" | "js" | "css" | "svg" | "png" | "json")
    );
    if !crate::script::catalog::valid_game_name(game) || !plain(file) || !allowed {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    let Some(full) = inside_game_folder(node.catalog.dir(), game, file) else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    match std::fs::read(&full) {
        Ok(bytes) => Response::builder()
            .header(CONTENT_TYPE, content_type(file))
            .header(CACHE_CONTROL, "no-cache")
            .body(Body::from(bytes))
            .unwrap_or_default(),
        Err(_) => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `games/GAME/FILE` with every symlink resolved, if it is a regular file
/// that stays inside the game's folder, and that folder inside the games
/// folder: a link to `/etc/passwd` (or a game folder linked from elsewhere)
/// serves nothing.
fn inside_game_folder(games: &Path, game: &str, file: &str) -> Option<PathBuf> {
    let games = games.canonicalize().ok()?;
    let folder = games.join(game).canonicalize().ok()?;
    let full = folder.join(file).canonicalize().ok()?;
    let inside = folder.starts_with(&games) && full.starts_with(&folder);
    (inside && full.is_file()).then_some(full)
}

/// The headers of Recess's own pages on another answer (the join QR code).
pub(crate) fn with_page_headers<B>(response: Response<Body>, req: &Request<B>) -> Response<Body> {
    page_headers(response, req, Kind::Page)
}

/// Which policy a response gets.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Recess's own pages: no inline script or style anywhere.
    Page,
    /// A game's own files: scripts only from this server too, but inline
    /// styles allowed, since a game's page may style itself in place.
    Custom,
}

/// Adds the headers every page and `/custom/` file carries. Scripts, styles,
/// fetches and sockets come only from this server (sockets named by the
/// request's `Host` too, for browsers whose `'self'` does not cover `ws:`);
/// pictures may also be `data:` or any `http(s)` URL, as views allow; no
/// plugins, no `<base>`, no framing (clickjacking), no content-type sniffing,
/// and no `Referer` (a join code may be in the URL).
fn page_headers<B>(mut response: Response<Body>, req: &Request<B>, kind: Kind) -> Response<Body> {
    let sockets = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| plain_host(h))
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    let style = match kind {
        Kind::Page => "'self'",
        Kind::Custom => "'self' 'unsafe-inline'",
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src {style}; \
         img-src 'self' data: https: http:; connect-src 'self'{sockets}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A `Host` header fit to name in the policy: a name or address and a port,
/// nothing that could end a source or a directive.
fn plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}
