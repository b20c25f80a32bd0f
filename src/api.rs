//! The REST API under `/api` (JSON; `Authorization: Bearer KEY` when
//! `--api-key` is set). Every route answers errors as `{code, message}` with
//! the HTTP status of the code.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::node::Node;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::server::Body;
use crate::session::{Command, MemberId, SessionId, make_token, parse_token, random_id};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

pub async fn handle(node: Arc<Node>, req: Request<Incoming>) -> Response<Body> {
    match dispatch(&node, req).await {
        Ok(response) => response,
        Err(e) => error(&e),
    }
}

async fn dispatch(
    node: &Arc<Node>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ProtocolError> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let parts: Vec<&str> = path.split('/').skip(2).collect();
    let token = query_param(&query, "token");
    match (req.method(), parts.as_slice()) {
        // Public: the host page lists games without a key.
        (&Method::GET, ["games"]) => {}
        // A session's host may fetch its results with its own token.
        (&Method::GET, ["sessions", _, "results"]) if token.is_some() => {}
        _ => authorize(node, &req)?,
    }
    match (req.method().clone(), parts.as_slice()) {
        (Method::GET, ["games"]) => Ok(ok(json!({ "games": node.catalog.list() }))),
        (Method::POST, ["sessions"]) => {
            #[derive(Deserialize)]
            struct Create {
                game: String,
                #[serde(default)]
                params: Json,
            }
            let body: Create = read_json(req).await?;
            let session: SessionId = random_id(12).into();
            let member: MemberId = format!("p{}", random_id(8)).into();
            let secret = random_id(24);
            let token = make_token(&session, &member, &secret);
            let (code, _) = node
                .create_session(
                    session.clone(),
                    &body.game,
                    body.params,
                    member,
                    secret,
                    false,
                )
                .await?;
            Ok(respond(
                StatusCode::CREATED,
                json!({ "session": &*session, "code": code, "host_token": token }),
            ))
        }
        (Method::GET, ["sessions", id]) => {
            let summary = node.request(id, |reply| Command::Summary { reply }).await?;
            Ok(ok(serde_json::to_value(summary).unwrap_or_default()))
        }
        (Method::POST, ["sessions", id, "events"]) => {
            let body: NamedData = read_json(req).await?;
            body.check()?;
            node.request(id, |reply| Command::Event {
                name: body.name,
                data: body.data,
                reply,
            })
            .await?;
            Ok(ok(json!({ "ok": true })))
        }
        (Method::POST, ["sessions", id, "broadcast"]) => {
            let body: NamedData = read_json(req).await?;
            body.check()?;
            let seq = node
                .request(id, |reply| Command::Broadcast {
                    name: body.name,
                    data: body.data,
                    reply,
                })
                .await?;
            Ok(ok(json!({ "ok": true, "seq": seq })))
        }
        (Method::GET, ["sessions", id, "results"]) => {
            let host = match &token {
                None => None,
                Some(t) => match parse_token(t) {
                    Some((session, member, secret)) if session == *id => {
                        Some((MemberId::from(member), secret.to_owned()))
                    }
                    _ => {
                        return Err(ProtocolError::new(
                            ErrorCode::Unauthorized,
                            "that token is not this session's host",
                        ));
                    }
                },
            };
            let results = node
                .request(id, |reply| Command::Results { host, reply })
                .await?;
            let Some(results) = results else {
                return Err(ProtocolError::new(
                    ErrorCode::Refused,
                    "the game has not finished yet; results exist after `ended`",
                ));
            };
            if query_param(&query, "format").as_deref() == Some("csv") {
                Ok(Response::builder()
                    .header(CONTENT_TYPE, "text/csv; charset=utf-8")
                    .header(
                        CONTENT_DISPOSITION,
                        format!("attachment; filename=\"results-{id}.csv\""),
                    )
                    .body(Body::from(results_csv(&results)))
                    .unwrap_or_default())
            } else {
                Ok(ok(json!({ "session": id, "results": results })))
            }
        }
        _ => Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!("no such route: {} {path}", req.method()),
        )),
    }
}

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

fn authorize(node: &Node, req: &Request<Incoming>) -> Result<(), ProtocolError> {
    let Some(key) = &node.config.api_key else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(key.as_str()) {
        Ok(())
    } else {
        Err(ProtocolError::new(
            ErrorCode::Unauthorized,
            "this API needs `Authorization: Bearer <api key>`",
        ))
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, ProtocolError> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
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

fn error(e: &ProtocolError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    respond(status, json!({ "code": e.code, "message": e.message }))
}

/// `results.rows` as CSV, columns in the order of `results.columns` (or the
/// sorted union of the rows' keys). Cells that a spreadsheet would run as a
/// formula are prefixed with `'`.
pub fn results_csv(results: &Json) -> String {
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
    let mut out = String::new();
    out.push_str(
        &columns
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(c) {
                None | Some(Json::Null) => String::new(),
                Some(Json::String(s)) => csv_cell(s),
                Some(other) => csv_cell(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_orders_columns_and_escapes() {
        let results = json!({
            "columns": ["rank", "name", "score"],
            "rows": [
                {"rank": 1, "name": "Ana, B", "score": 900},
                {"rank": 2, "name": "=cmd()", "score": -5},
            ]
        });
        assert_eq!(
            results_csv(&results),
            "rank,name,score\r\n1,\"Ana, B\",900\r\n2,'=cmd(),-5\r\n"
        );
    }
}
