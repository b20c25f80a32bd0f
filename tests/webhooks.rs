//! Webhooks out: a small HTTP receiver in the test takes what a real node
//! posts (`session.created`, `ctx.emit`'s events, `session.ended`), checks
//! each signature, and can refuse posts to make the node retry.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::TwoNodes;
use common::{Client, TestServer, http, results_csv};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const SECRET: &str = "whsec-test-5a1e";

/// A game whose actions emit webhooks and finish with results.
const EMITTER: &str = r#"
return {
  init = function(ctx) return { n = 0 } end,
  action = function(state, ctx, player, name, data)
    if name == "emit" then
      state.n = state.n + 1
      ctx.emit("scored", { n = state.n, by = player.name })
    elseif name == "finish" then
      ctx.finish({ columns = { "name", "points" }, rows = {
        { name = "Ana", points = 3 }, { name = "Ben, \"B\"", points = state.n },
      } })
    elseif name == "bad" then
      ctx.emit("session.fake", {})
    end
  end,
  view = function(state, player) return { text = "n = " .. state.n } end,
}
"#;

/// One post the receiver took (answered 200).
#[derive(Debug, Clone)]
struct Post {
    id: String,
    body: Value,
}

/// An HTTP receiver on 127.0.0.1 that answers the first `refuse` posts
/// with 500, then 200, and keeps what it took, in order.
struct Receiver {
    addr: SocketAddr,
    taken: Arc<Mutex<Vec<Post>>>,
    /// Every post that arrived, taken or not.
    seen: Arc<AtomicUsize>,
    refuse: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
}

impl Receiver {
    async fn start(refuse: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            taken: Arc::default(),
            seen: Arc::default(),
            refuse: Arc::new(AtomicUsize::new(refuse)),
            arrived: Arc::default(),
        };
        let (taken, seen, left, arrived) = (
            receiver.taken.clone(),
            receiver.seen.clone(),
            receiver.refuse.clone(),
            receiver.arrived.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (taken, seen, left, arrived) =
                    (taken.clone(), seen.clone(), left.clone(), arrived.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let Some((headers, body)) = read_request(&mut stream).await else {
                        return;
                    };
                    seen.fetch_add(1, Ordering::SeqCst);
                    let refused = left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = if refused {
                        "500 Internal Server Error"
                    } else {
                        check_signature(&headers, &body);
                        let body: Value = serde_json::from_str(&body).expect("a JSON body");
                        let id = headers["recess-webhook-id"].clone();
                        assert_eq!(body["id"], id.as_str(), "the header's id is the body's");
                        taken.lock().unwrap().push(Post { id, body });
                        "200 OK"
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.get_mut().write_all(answer.as_bytes()).await;
                    arrived.notify_waiters();
                });
            }
        });
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    fn taken(&self) -> Vec<Post> {
        self.taken.lock().unwrap().clone()
    }

    /// Waits until `pred` holds of what was taken.
    async fn wait(&self, what: &str, pred: impl Fn(&[Post]) -> bool) -> Vec<Post> {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let notified = self.arrived.notified();
                let taken = self.taken();
                if pred(&taken) {
                    return taken;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("waited for {what}; took {:?}", self.taken()))
    }
}

/// Reads one HTTP/1.1 request: its headers (lower-case names) and body.
async fn read_request(
    stream: &mut BufReader<tokio::net::TcpStream>,
) -> Option<(HashMap<String, String>, String)> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok()?;
    assert!(line.starts_with("POST /hooks "), "{line}");
    let mut headers = HashMap::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await.ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    assert_eq!(headers["content-type"], "application/json");
    Some((headers, String::from_utf8(body).ok()?))
}

/// `Recess-Signature: t=AT,v1=HEX` is the HMAC-SHA256 of `AT.BODY`.
fn check_signature(headers: &HashMap<String, String>, body: &str) {
    let sig = &headers["recess-signature"];
    let (at, hex) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature {sig}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{at}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, expected, "the signature of {body}");
}

/// A node with the emitter game that posts its webhooks to `receiver`.
async fn emitter_node(receiver: &Receiver) -> TestServer {
    let url = receiver.url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("emitter.lua"), EMITTER).unwrap();
    TestServer::start_in(dir, |c| {
        c.webhooks = vec![url.clone()];
        c.webhook_secrets = vec![SECRET.into()];
    })
    .await
}

fn events(posts: &[Post]) -> Vec<String> {
    posts
        .iter()
        .map(|p| p.body["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The ids as first taken, and whether every one after is a repeat.
fn distinct_ids(posts: &[Post]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for p in posts {
        if !ids.contains(&p.id) {
            ids.push(p.id.clone());
        }
    }
    ids
}

#[tokio::test]
async fn a_session_posts_created_its_emits_and_ended_with_the_results_signed() {
    let receiver = Receiver::start(0).await;
    let server = emitter_node(&receiver).await;
    let mut host = server.client().await;
    let w = host.host("emitter", json!({"round": 1})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(host.act(&session, "emit", json!({})).await["type"], "ack");
    }
    // A name of Recess's own is the game's error, not a webhook.
    let bad = host.act(&session, "bad", json!({})).await;
    assert_eq!(bad["code"], "script_error", "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("`session.` names are Recess's"),
        "{bad}"
    );
    assert_eq!(host.act(&session, "finish", json!({})).await["type"], "ack");

    let posts = receiver.wait("five webhooks", |p| p.len() == 5).await;
    assert_eq!(
        events(&posts),
        [
            "session.created",
            "scored",
            "scored",
            "scored",
            "session.ended"
        ]
    );
    for (i, p) in posts.iter().enumerate() {
        assert_eq!(p.id, format!("{session}.{}", i + 1));
        assert_eq!(p.body["session"], session.as_str());
        assert_eq!(p.body["game"], "emitter");
        assert!(p.body["at"].as_i64().unwrap() > 1_700_000_000_000);
    }
    assert_eq!(posts[0].body["data"]["code"], w["code"]);
    assert_eq!(posts[0].body["data"]["params"], json!({"round": 1}));
    let ns: Vec<_> = posts[1..4]
        .iter()
        .map(|p| p.body["data"]["n"].clone())
        .collect();
    assert_eq!(ns, [json!(1), json!(2), json!(3)]);
    assert_eq!(posts[1].body["data"]["by"], "Host");

    // session.ended carries the results: the same as the spreadsheet's.
    let results = &posts[4].body["data"]["results"];
    let csv = results_csv(&server, &session, &token).await;
    let mut from_hook = String::from("\"name\",\"points\"\r\n");
    for row in results["rows"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap().replace('"', "\"\"");
        from_hook.push_str(&format!("\"{name}\",\"{}\"\r\n", row["points"]));
    }
    assert_eq!(csv, from_hook);
    let (status, metrics) = http(server.addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("recess_webhooks_delivered_total 5"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_twice_then_succeeds_gets_every_webhook_once_in_order() {
    let receiver = Receiver::start(2).await;
    let server = emitter_node(&receiver).await;
    let mut host = server.client().await;
    let w = host.host("emitter", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(host.act(&session, "emit", json!({})).await["type"], "ack");
    }
    let posts = receiver.wait("six webhooks", |p| p.len() == 6).await;
    let ids: Vec<_> = posts.iter().map(|p| p.id.clone()).collect();
    let expected: Vec<_> = (1..=6).map(|n| format!("{session}.{n}")).collect();
    assert_eq!(ids, expected, "each once, in order");
    assert_eq!(
        receiver.seen.load(Ordering::SeqCst),
        8,
        "two refused posts, then six"
    );
    let (_, metrics) = http(server.addr, "GET", "/metrics", None).await;
    assert!(
        metrics.contains("recess_webhook_failures_total 2"),
        "{metrics}"
    );
    server.stop().await;
}

/// The owner is killed while its receiver refuses everything; the node
/// that takes the session over sends what was pending, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_retry_loses_no_webhook() {
    let receiver = Receiver::start(usize::MAX).await;
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("emitter.lua"), EMITTER).unwrap();
    let hook = receiver.url();
    let flags = ["--webhook", &hook, "--webhook-secret", SECRET];
    let nodes = TwoNodes::start(games.path(), &flags).await;
    let (a, b) = (nodes.a, nodes.b);

    let mut host = Client::connect(a.addr).await;
    let w = host.host("emitter", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        assert_eq!(host.act(&session, "emit", json!({})).await["type"], "ack");
    }
    // Node a is retrying its first webhook when it dies.
    tokio::time::timeout(Duration::from_secs(30), async {
        while receiver.seen.load(Ordering::SeqCst) < 2 {
            receiver.arrived.notified().await;
        }
    })
    .await
    .expect("node a posts and retries");
    a.kill().await;
    receiver.refuse.store(0, Ordering::SeqCst);

    // Asking node b for the session makes it take the session over.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http(b.addr, "GET", &format!("/api/sessions/{session}"), None).await;
        if status == 200
            && serde_json::from_str::<Value>(&body).unwrap()["owner"]
                .as_str()
                .unwrap()
                .starts_with("b-")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no takeover: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = receiver
        .wait("five webhooks", |p| distinct_ids(p).len() == 5)
        .await;
    let expected: Vec<_> = (1..=5).map(|n| format!("{session}.{n}")).collect();
    assert_eq!(distinct_ids(&posts), expected, "none lost, in order");
    assert_eq!(
        events(&posts[..5]),
        ["session.created", "scored", "scored", "scored", "scored"]
    );
    b.kill().await;
}
