//! The browser pages, embedded in the binary from `web/` (no build step).

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use rust_embed::RustEmbed;

use crate::node::Node;
use crate::server::{Body, text};

#[derive(RustEmbed)]
#[folder = "web/"]
struct Pages;

pub fn serve(_node: &Node, path: &str) -> Response<Body> {
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
