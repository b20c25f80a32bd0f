//! The OpenAPI description the node serves (`GET /api/openapi.json`,
//! `docs/openapi.json`) against the routes it serves: every operation it
//! lists answers (with its example body) one of the statuses it lists, with
//! the key and without it, and a method it does not list for a path is not
//! served. `scripts/test` validates the file itself with
//! openapi-spec-validator.

mod common;

use common::{API_KEY, TestServer, chat_with_host, http_with};
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The routes the router's match arms name, read from its source: REST's
/// `(Method::GET, ["sessions", id])` in src/api.rs (`/api` + segments, a
/// variable as `{id}`) and the server's `(&Method::GET, "/healthz")` in
/// src/server.rs (but `/games`, the WebSocket, which docs/protocol.md
/// describes).
fn routes_in_source() -> std::collections::BTreeSet<(String, String)> {
    let mut routes = std::collections::BTreeSet::new();
    for line in include_str!("../src/api.rs").lines() {
        let Some((method, segments)) = match_arm(line, "(Method::", ", [", "])") else {
            continue;
        };
        let mut path = String::from("/api");
        for segment in segments.split(", ") {
            path.push('/');
            match segment.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(literal) => path.push_str(literal),
                None => path.push_str("{id}"),
            }
        }
        routes.insert((method.to_owned(), path));
    }
    for line in include_str!("../src/server.rs").lines() {
        if let Some((method, path)) = match_arm(line, "(&Method::", ", \"", "\"")
            && path != "/games"
        {
            routes.insert((method.to_owned(), path.to_owned()));
        }
    }
    routes
}

/// A match arm's method and the pattern between `open` and `close`
/// (`(Method::GET, ["sessions", id])` gives `GET` and `"sessions", id`).
fn match_arm<'a>(
    line: &'a str,
    prefix: &str,
    open: &str,
    close: &str,
) -> Option<(&'a str, &'a str)> {
    let (method, rest) = line.trim().strip_prefix(prefix)?.split_once(open)?;
    let (pattern, _) = rest.split_once(close)?;
    Some((method, pattern))
}

/// A call of `method` on `path` with `{id}` and the required query
/// parameters filled in, and the operation's example body.
struct Call {
    method: String,
    path: String,
    body: String,
}

fn call(method: &str, template: &str, op: &Value, session: &str, code: &str) -> Call {
    let mut path = template.replace("{id}", session);
    let required: Vec<&str> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .filter_map(|p| p["name"].as_str())
        .collect();
    for (i, name) in required.iter().enumerate() {
        let value = if *name == "code" { code } else { "x" };
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(&format!("{name}={value}"));
    }
    let body = op["requestBody"]["content"]["application/json"]["example"].clone();
    Call {
        method: method.to_ascii_uppercase(),
        path,
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    }
}

fn statuses(op: &Value) -> Vec<u16> {
    op["responses"]
        .as_object()
        .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_served_description_matches_the_routes_the_node_serves() {
    let server = TestServer::start().await;
    let (_host, session, code) = chat_with_host(&server).await;
    let (status, text) = http_with(server.addr, "GET", "/api/openapi.json", "", "").await;
    assert_eq!(status, 200, "served without a key: {text}");
    let spec: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(spec["openapi"], "3.1.0");
    let on_disk: Value = serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();
    assert_eq!(spec, on_disk, "the node serves docs/openapi.json");

    let described: std::collections::BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().into_iter().flat_map(|o| o.keys());
            methods.map(move |m| (m.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    assert_eq!(
        described,
        routes_in_source(),
        "the description and the router's arms"
    );

    let keyed = format!("Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n");
    let paths = spec["paths"].as_object().expect("paths");
    for (template, item) in paths {
        for method in METHODS {
            let op = &item[method.to_ascii_lowercase()];
            let c = call(method, template, op, &session, &code);
            let (status, body) = http_with(server.addr, &c.method, &c.path, &keyed, &c.body).await;
            if op.is_null() {
                // Not described: not served either.
                let unserved = status == 405
                    || body.contains("no such route")
                    || (status == 404 && !template.starts_with("/api"));
                assert!(
                    unserved,
                    "{method} {template} is served ({status} {body}) but not described"
                );
                continue;
            }
            let listed = statuses(op);
            assert!(
                listed.contains(&status),
                "{method} {} answered {status} {body}; the description lists {listed:?}",
                c.path
            );
            assert!(
                !body.contains("no such route"),
                "{method} {template}: {body}"
            );
            // A route that needs the key refuses a wrong one, as described.
            let open = op["security"].as_array().is_some_and(|s| {
                s.is_empty()
                    || s.iter()
                        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            // Its errors, each with a status the description lists.
            let mut errors: Vec<(&str, String, String, String)> = Vec::new();
            if template.contains("{id}") {
                let gone = call(method, template, op, "nosuchsession", &code);
                errors.push(("an unknown session", gone.path, keyed.clone(), gone.body));
            }
            if method == "POST" {
                let plain =
                    format!("Authorization: Bearer {API_KEY}\r\nContent-Type: text/plain\r\n");
                errors.push((
                    "a body not sent as JSON",
                    c.path.clone(),
                    plain,
                    c.body.clone(),
                ));
                errors.push((
                    "a body that is not JSON",
                    c.path.clone(),
                    keyed.clone(),
                    "{".into(),
                ));
            }
            if !open {
                errors.push(("no key", c.path.clone(), String::new(), c.body.clone()));
            }
            for (what, path, headers, body) in errors {
                let (status, answer) =
                    http_with(server.addr, &c.method, &path, &headers, &body).await;
                assert!(
                    (400..500).contains(&status) && listed.contains(&status),
                    "{method} {template} with {what} answered {status} {answer}; the description lists {listed:?}"
                );
            }
            if !open {
                let wrong =
                    "Authorization: Bearer not-the-key\r\nContent-Type: application/json\r\n";
                let (status, body) =
                    http_with(server.addr, &c.method, &c.path, wrong, &c.body).await;
                assert_eq!(status, 401, "{method} {template} with a wrong key: {body}");
                assert!(
                    listed.contains(&401),
                    "{method} {template} does not list 401"
                );
            }
        }
    }
    // What no arm names falls through to the router's own answer.
    for (method, path) in [
        ("GET", "/api/sessions"),
        ("DELETE", "/api/games"),
        ("GET", "/api/nothing"),
    ] {
        let (status, body) = http_with(server.addr, method, path, &keyed, "").await;
        assert!(
            status == 404 && body.contains("\"no_such_route\"") && body.contains("no such route"),
            "{method} {path}: {status} {body}"
        );
    }
    server.stop().await;
}
