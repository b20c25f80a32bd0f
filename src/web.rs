//! The browser pages, embedded in the binary from `web/` (no build step).

use std::path::{Path, PathBuf};

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

/// `/custom/NAME/FILE`: a folder game's own client files (`client.html`,
/// scripts, styles, images), read from the games folder on each request so a
/// save is live at once. Only plain file names inside the game's folder.
pub fn serve_custom(node: &Node, path: &str) -> Response<Body> {
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
