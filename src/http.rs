//! What the HTTP side shares: the response body type and plain-text answers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};

/// The body of every response the server makes.
pub(crate) type Body = Full<Bytes>;

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(body.to_owned()))
        .unwrap_or_default()
}
