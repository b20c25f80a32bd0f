//! The REST API under `/api` (JSON). Routes that read or change a session
//! need `Authorization: Bearer KEY` with the `--api-key`; without one
//! configured they answer 403. `GET /api/games` is public, a session's host
//! reads its results with its own token, and `POST /api/sessions` also takes
//! the `--host-key`. Every route answers errors as `{code, message}` with the
//! HTTP status of the code (docs/security.md has the whole rule).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::auth;
use crate::http::Body;
use crate::keys::KeyKind;
use crate::node::Node;
use crate::protocol::{ErrorCode, NameMode, ProtocolError};
use crate::session::{
    Answer, MemberId, Request as SessionRequest, SessionId, make_token, new_member_id, new_secret,
    new_session_id, parse_token,
};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// One REST request; `client` is the caller's address (behind a trusted
/// proxy, the one it forwarded), counted when a session is created with the
/// host key rather than the API key.
pub(crate) async fn handle(
    node: Arc<Node>,
    req: Request<Incoming>,
    client: IpAddr,
) -> Response<Body> {
    match dispatch(&node, req, client).await {
        Ok(response) => response,
        Err(e) => error(&e),
    }
}

async fn dispatch(
    node: &Arc<Node>,
    req: Request<Incoming>,
    client: IpAddr,
) -> Result<Response<Body>, ProtocolError> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let parts: Vec<&str> = path.split('/').skip(2).collect();
    let token = query_param(&query, "token");
    // Set when `POST /api/sessions` came with the host key: the session then
    // counts against the caller's address, like a `host` frame.
    let mut host_addr = None;
    // The name of the key the request came with (logs name keys, never show them).
    let key = match (req.method(), parts.as_slice()) {
        // Public: the host page lists games without a key, and the API's
        // description is no secret.
        (&Method::GET, ["games" | "openapi.json"]) => None,
        // A session's host may fetch its results and its recording with
        // its own token.
        (&Method::GET, ["sessions", _, "results" | "recording"]) if token.is_some() => None,
        // Creating a session is hosting: the host key will do.
        (&Method::POST, ["sessions"]) => match authorize_host(node, &req)? {
            Key::Host(name) => {
                host_addr = Some(client);
                Some(name)
            }
            Key::Api(name) => Some(name),
        },
        _ => Some(authorize(node, &req)?),
    };
    if let Some(key) = &key {
        tracing::debug!(key = %key, method = %req.method(), path = %req.uri().path(), "REST call");
    }
    if req.method() == Method::POST {
        require_json(&req)?;
    }
    match (req.method().clone(), parts.as_slice()) {
        (Method::GET, ["games"]) => Ok(ok(json!({ "games": node.catalog.list() }))),
        (Method::GET, ["openapi.json"]) => Ok(Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(Bytes::from_static(OPENAPI.as_bytes())))
            .unwrap_or_default()),
        (Method::POST, ["sessions"]) => {
            #[derive(Deserialize)]
            struct Create {
                game: String,
                #[serde(default)]
                params: Json,
                #[serde(default)]
                names: NameMode,
            }
            let body: Create = read_json(req, node.config.header_timeout()).await?;
            let session: SessionId = new_session_id();
            let member: MemberId = new_member_id();
            let secret = new_secret();
            let token = make_token(&session, &member, &secret);
            let (code, _) = node
                .create_session(
                    session.clone(),
                    &body.game,
                    body.params,
                    body.names,
                    member,
                    secret,
                    false,
                    host_addr,
                )
                .await?;
            tracing::info!(session = %session, game = %body.game, key = %key.as_deref().unwrap_or(""), "session created over REST");
            Ok(respond(
                StatusCode::CREATED,
                json!({ "session": &*session, "code": code, "host_token": token }),
            ))
        }
        (Method::GET, ["sessions", id]) => {
            let summary = Answer::summary(node.request(id, SessionRequest::Summary).await)?;
            Ok(ok(serde_json::to_value(summary).unwrap_or_default()))
        }
        (Method::POST, ["sessions", id, "events"]) => {
            let body: NamedData = read_json(req, node.config.header_timeout()).await?;
            body.check()?;
            let event = SessionRequest::Event {
                name: body.name,
                data: body.data,
            };
            Answer::done(node.request(id, event).await)?;
            Ok(ok(json!({ "ok": true })))
        }
        (Method::POST, ["sessions", id, "broadcast"]) => {
            let body: NamedData = read_json(req, node.config.header_timeout()).await?;
            body.check()?;
            let broadcast = SessionRequest::Broadcast {
                name: body.name,
                data: body.data,
            };
            let seq = Answer::seq(node.request(id, broadcast).await)?;
            Ok(ok(json!({ "ok": true, "seq": seq })))
        }
        (Method::GET, ["sessions", id, "recording"]) => {
            let host = host_of(token.as_deref(), id)?;
            let with_token = host.is_some();
            let json =
                Answer::recording(node.request(id, SessionRequest::Recording { host }).await)
                    .map_err(|e| hide_which(e, with_token))?;
            Ok(Response::builder()
                .header(CONTENT_TYPE, "application/json")
                .header(
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"recording-{id}.json\""),
                )
                .body(Body::from(json))
                .unwrap_or_default())
        }
        (Method::GET, ["sessions", id, "results"]) => {
            let host = host_of(token.as_deref(), id)?;
            let with_token = host.is_some();
            let (results, finished) =
                Answer::results(node.request(id, SessionRequest::Results { host }).await)
                    .map_err(|e| hide_which(e, with_token))?;
            let Some(results) = results else {
                return Err(ProtocolError::new(
                    ErrorCode::Refused,
                    "the game has no results yet: they exist after `ctx.report` or `ended`",
                ));
            };
            if query_param(&query, "format").as_deref() == Some("csv") {
                Ok(Response::builder()
                    .header(CONTENT_TYPE, "text/csv; charset=utf-8")
                    .header(
                        CONTENT_DISPOSITION,
                        format!("attachment; filename=\"results-{id}.csv\""),
                    )
                    .body(Body::from(results_csv(&results).map_err(|e| {
                        ProtocolError::new(
                            ErrorCode::Internal,
                            format!("could not write the CSV: {e}"),
                        )
                    })?))
                    .unwrap_or_default())
            } else {
                Ok(ok(
                    json!({ "session": id, "results": results, "final": finished }),
                ))
            }
        }
        _ => Err(ProtocolError::new(
            ErrorCode::NoSuchRoute,
            format!("no such route: {} {path}", req.method()),
        )),
    }
}

/// The API's OpenAPI 3.1 description (`GET /api/openapi.json`): every
/// route this module and the server's router serve (tests/openapi.rs holds
/// them to it; `scripts/test` validates it).
const OPENAPI: &str = include_str!("../docs/openapi.json");

#[derive(Deserialize)]
struct NamedData {
    name: String,
    #[serde(default)]
    data: Json,
}

impl NamedData {
    fn check(&self) -> Result<(), ProtocolError> {
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(ProtocolError::new(
                ErrorCode::BadFrame,
                "`name` must be 1 to 64 bytes",
            ));
        }
        Ok(())
    }
}

/// One query parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The seat and secret of a `?token=` for session `id` (none: the caller
/// has the API key).
fn host_of(token: Option<&str>, id: &str) -> Result<Option<(MemberId, String)>, ProtocolError> {
    match token {
        None => Ok(None),
        Some(t) => match parse_token(t) {
            Some((session, member, secret)) if session == id => {
                Ok(Some((MemberId::from(member), secret.to_owned())))
            }
            _ => Err(bad_results_token()),
        },
    }
}

/// With a token, a wrong secret and an unknown id answer alike: the
/// answer must not tell which ids exist.
fn hide_which(e: ProtocolError, with_token: bool) -> ProtocolError {
    match e.code {
        ErrorCode::UnknownSession | ErrorCode::Unauthorized if with_token => bad_results_token(),
        _ => e,
    }
}

fn bad_results_token() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Unauthorized,
        "that token is not the host's token of a session with this id",
    )
}

/// The API key's check, for every route that reads or changes a session
/// (and `/metrics`). With no `--api-key` configured those routes are off.
pub(crate) fn authorize<B>(node: &Node, req: &Request<B>) -> Result<Arc<str>, ProtocolError> {
    if !node.keys.any(KeyKind::Api) {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "the REST API is off: start recess with --api-key KEY (or RECESS_API_KEY, or --api-keys FILE) and send `Authorization: Bearer KEY`",
        ));
    }
    if let Some(name) = node.keys.check(KeyKind::Api, auth::bearer(req.headers())) {
        Ok(name)
    } else {
        Err(ProtocolError::new(
            ErrorCode::Unauthorized,
            "this API needs `Authorization: Bearer <api key>`",
        ))
    }
}

/// Which key a request was let in with, and its name.
enum Key {
    Api(Arc<str>),
    Host(Arc<str>),
}

/// `POST /api/sessions`: the API key, or the `--host-key` as a bearer token
/// (the same key a `host` frame carries).
fn authorize_host(node: &Node, req: &Request<Incoming>) -> Result<Key, ProtocolError> {
    let given = auth::bearer(req.headers());
    if !node.keys.any(KeyKind::Api) && !node.keys.any(KeyKind::Host) {
        return Err(ProtocolError::new(
            ErrorCode::Forbidden,
            "creating sessions over REST is off: start recess with --api-key KEY (or --host-key KEY) and send `Authorization: Bearer KEY`",
        ));
    }
    if let Some(name) = node.keys.check(KeyKind::Api, given) {
        Ok(Key::Api(name))
    } else if let Some(name) = node.keys.check(KeyKind::Host, given) {
        Ok(Key::Host(name))
    } else {
        Err(ProtocolError::new(
            ErrorCode::Unauthorized,
            "creating a session needs `Authorization: Bearer <api key or host key>`",
        ))
    }
}

/// A `POST` must say its body is JSON: a browser form on another site can
/// only send `text/plain`, form or multipart bodies without asking first.
fn require_json(req: &Request<Incoming>) -> Result<(), ProtocolError> {
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(ProtocolError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ))
    }
}

/// The request's JSON body, which must arrive whole within `timeout` (the
/// same time as its headers: a client that trickles a body in holds a
/// connection, and connections are bounded).
async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    timeout: std::time::Duration,
) -> Result<T, ProtocolError> {
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = tokio::time::timeout(timeout, collect)
        .await
        .map_err(|_| {
            ProtocolError::new(
                ErrorCode::BadFrame,
                format!(
                    "the request body did not arrive within {} ms",
                    timeout.as_millis()
                ),
            )
        })?
        .map_err(|e| {
            ProtocolError::new(
                ErrorCode::TooLarge,
                format!("could not read the request body (at most {MAX_BODY} bytes): {e}"),
            )
        })?
        .to_bytes();
    crate::protocol::check_depth(&body)?;
    serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            ErrorCode::BadJson
        } else {
            ErrorCode::BadFrame
        };
        ProtocolError::new(code, format!("bad request body: {e}"))
    })
}

fn respond(status: StatusCode, body: Json) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

fn ok(body: Json) -> Response<Body> {
    respond(StatusCode::OK, body)
}

pub(crate) fn error(e: &ProtocolError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = respond(status, serde_json::to_value(e).unwrap_or_default());
    if let Some(ms) = e.retry_after_ms
        && let Ok(value) = hyper::header::HeaderValue::try_from(ms.div_ceil(1000).to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// `results.rows` as CSV, columns in the order of `results.columns` (or the
/// sorted union of the rows' keys), every field quoted, CRLF lines. Cells are
/// neutralised against formula injection (see [`csv_cell`]); numbers stay
/// numbers.
pub(crate) fn results_csv(results: &Json) -> Result<Vec<u8>, csv::Error> {
    let rows: Vec<&serde_json::Map<String, Json>> = results
        .get("rows")
        .and_then(Json::as_array)
        .map(|rows| rows.iter().filter_map(Json::as_object).collect())
        .unwrap_or_default();
    let columns: Vec<String> = match results.get("columns").and_then(Json::as_array) {
        Some(cols) => cols
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect(),
        None => {
            let mut keys: Vec<String> = rows.iter().flat_map(|r| r.keys().cloned()).collect();
            keys.sort();
            keys.dedup();
            keys
        }
    };
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(columns.iter().map(|c| csv_cell(c)))?;
    for row in rows {
        out.write_record(columns.iter().map(|c| match row.get(c) {
            None | Some(Json::Null) => String::new(),
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::String(s)) => csv_cell(s),
            Some(other) => csv_cell(&other.to_string()),
        }))?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// One text cell, made safe to open in a spreadsheet. A spreadsheet runs a
/// cell as a formula when it starts with `=`, `+`, `-` or `@` (after spaces,
/// which some imports trim). A cell starts at the start of the field, and
/// also after any character a user may pick as the separator on import (`,`
/// `;` tab `|`) or a line break, whatever quoting the file has: a
/// semicolon-separated import of `x;=cmd|...` makes `=cmd|...` a cell. So an
/// apostrophe goes before each such character there (`'=cmd|...`), which
/// makes that cell text. Plain numbers (`-5`) are left alone.
fn csv_cell(s: &str) -> String {
    if is_plain_number(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 1);
    let mut at_cell_start = true;
    for c in s.chars() {
        match c {
            '=' | '+' | '-' | '@' if at_cell_start => {
                out.push('\'');
                at_cell_start = false;
            }
            ',' | ';' | '\t' | '|' | '\r' | '\n' => at_cell_start = true,
            // Spaces may be trimmed and quotes opened around the cell.
            ' ' | '"' => {}
            _ => at_cell_start = false,
        }
        out.push(c);
    }
    out
}

/// `-5`, `12`, `3.75`, `1e6`: a number a spreadsheet reads as one.
fn is_plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (digits, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && all_digits(whole)
        && all_digits(fraction)
        && exponent.is_none_or(|e| !e.is_empty() && all_digits(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(results: &Json) -> String {
        String::from_utf8(results_csv(results).unwrap()).unwrap()
    }

    #[test]
    fn csv_orders_columns_and_quotes_every_field() {
        let results = json!({
            "columns": ["rank", "name", "score"],
            "rows": [
                {"rank": 1, "name": "Ana, B", "score": 900},
                {"rank": 2, "name": "say \"hi\"\nbye", "score": -5},
                {"rank": 3, "score": 2.5},
            ]
        });
        assert_eq!(
            csv(&results),
            "\"rank\",\"name\",\"score\"\r\n\"1\",\"Ana, B\",\"900\"\r\n\
             \"2\",\"say \"\"hi\"\"\nbye\",\"-5\"\r\n\"3\",\"\",\"2.5\"\r\n"
        );
    }

    #[test]
    fn csv_neutralises_formulas_at_every_cell_start() {
        for (given, written) in [
            ("=cmd()", "'=cmd()"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("  =1+1", "  '=1+1"),
            ("x;=cmd|' /C calc'!A0", "x;'=cmd|' /C calc'!A0"),
            ("x,=1", "x,'=1"),
            ("x\t@a", "x\t'@a"),
            ("x|-1", "x|'-1"),
            ("x\n+1", "x\n'+1"),
            ("x; \"=1", "x; \"'=1"),
            ("Ana - B", "Ana - B"),
            ("Jean-Luc", "Jean-Luc"),
            ("a=b", "a=b"),
            ("-5", "-5"),
            ("+3.5e-2", "+3.5e-2"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("1e", "1e"),
        ] {
            assert_eq!(csv_cell(given), written, "{given:?}");
        }
    }
}
