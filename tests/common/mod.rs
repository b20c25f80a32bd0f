//! Test harness: a real Recess server on 127.0.0.1:0 (in-process or as the
//! real binary), real temp folders for games and sled, and a WebSocket client
//! that speaks protocol v1 and keeps each session's view by applying patches.
#![allow(dead_code)]

pub mod cluster;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use recess::view;
use recess::{Config, Server};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The REST API key every test server runs with (the REST API is off
/// without one); `http` sends it.
pub const API_KEY: &str = "test-api-key";

/// A game whose `crunch` action keeps its owner busy for a while (about
/// 40 ms for `n` = 500 000 (80 ms for 1 000 000) in a debug build), well inside the handler's CPU
/// budget (250 ms).
pub const CRUNCH_GAME: &str = r#"
return {
  init = function(ctx, params) return { crunched = 0 } end,
  action = function(state, ctx, player, name, data)
    if name ~= "crunch" then return false, "use crunch" end
    local x = 0
    for i = 1, data.n do x = x + i % 7 end
    state.crunched = state.crunched + 1
  end,
  view = function(state, player) return { crunched = state.crunched } end,
}
"#;

/// A counter or gauge from a node's `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (status, body) = http(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200, "{body}");
    let line = format!("recess_{name} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics: {body}"))
}

/// The games shipped in the repository's `games/` folder.
pub fn shipped_games() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("games")
}

/// The `recess` binary, ready for its arguments.
pub fn recess() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_recess"))
}

/// `recess ARGS` run in `dir`, to the end.
pub fn recess_in(dir: &Path, args: &[&str]) -> std::process::Output {
    recess()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the recess binary runs")
}

/// What a command printed on stdout.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the shipped games (the files at the top of `games/`) into a fresh
/// temp folder.
pub fn games_dir_with_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp games dir");
    for entry in std::fs::read_dir(shipped_games()).expect("games folder") {
        let entry = entry.expect("entry");
        // Lua games and their tests, and spreadsheet games.
        if entry
            .path()
            .extension()
            .is_some_and(|e| e == "lua" || e == "csv" || e == "xlsx")
        {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy game");
        }
    }
    dir
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Option<Server>,
    pub games: tempfile::TempDir,
    pub data: tempfile::TempDir,
    /// With `RECESS_TEST_CLUSTER=N`: N-1 more nodes and the Redis they share;
    /// clients alternate between the nodes.
    pub others: Vec<(Server, tempfile::TempDir)>,
    pub redis: Option<cluster::RedisServer>,
    next: std::sync::atomic::AtomicUsize,
}

impl TestServer {
    /// A server with the shipped games.
    pub async fn start() -> TestServer {
        Self::start_in(games_dir_with_shipped(), |_| {}).await
    }

    /// A server with only the given game files.
    pub async fn with_games(files: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp games dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(path, text).expect("write game");
        }
        Self::start_in(dir, |_| {}).await
    }

    pub async fn start_in(games: tempfile::TempDir, tweak: impl Fn(&mut Config)) -> TestServer {
        let data = tempfile::tempdir().expect("temp data dir");
        let mut config = Config::for_dirs(games.path(), data.path());
        config.api_key = Some(API_KEY.into());
        tweak(&mut config);
        // RECESS_TEST_CLUSTER=N runs the same tests against N nodes (at least 2).
        let nodes: usize = std::env::var("RECESS_TEST_CLUSTER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let clustered = nodes > 0;
        let redis = if clustered {
            Some(cluster::RedisServer::start().await)
        } else {
            None
        };
        if let Some(r) = &redis {
            config.redis = Some(r.url());
            config.node_id = Some("a".into());
        }
        let server = Server::start(config).await.expect("server starts");
        let mut others = Vec::new();
        if let Some(r) = &redis {
            let data = tempfile::tempdir().expect("temp data dir");
            let mut config = Config::for_dirs(games.path(), data.path());
            config.api_key = Some(API_KEY.into());
            tweak(&mut config);
            config.redis = Some(r.url());
            config.node_id = Some("b".into());
            others.push((
                Server::start(config).await.expect("second node starts"),
                data,
            ));
        }
        TestServer {
            addr: server.addr,
            server: Some(server),
            games,
            data,
            others,
            redis,
            next: Default::default(),
        }
    }

    /// Every node's address (one unless running as a cluster).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr)
            .chain(self.others.iter().map(|(s, _)| s.addr))
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client on the next node (round-robin in a cluster).
    pub async fn client(&self) -> Client {
        let addrs = self.addrs();
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Client::connect(addrs[i % addrs.len()]).await
    }

    pub fn write_game(&self, name: &str, text: &str) {
        write_atomically(&self.games.path().join(name), text);
    }

    pub async fn stop(mut self) {
        for (s, _) in self.others.drain(..) {
            s.shutdown().await;
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A chat session titled "Room 4" hosted on a new client: the host, the
/// session id and the join code.
pub async fn chat_with_host(server: &TestServer) -> (Client, String, String) {
    let mut host = server.client().await;
    let w = host.host("chat", json!({"title": "Room 4"})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    (host, session, code)
}

/// A session of `game` hosted on a new client, and `students` students
/// joined as `Student 00`, `Student 01`, ... each on a client of their own.
pub struct Class {
    pub host: Client,
    pub session: String,
    pub code: String,
    /// The host's token (results, recording).
    pub token: String,
    pub students: Vec<Client>,
}

impl Class {
    pub async fn start(server: &TestServer, game: &str, params: Value, students: usize) -> Class {
        let mut host = server.client().await;
        let w = host.host(game, params).await;
        let text = |k: &str| {
            w[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {w}"))
                .to_owned()
        };
        let (session, code, token) = (text("session"), text("code"), text("token"));
        let mut joined = Vec::with_capacity(students);
        for i in 0..students {
            let mut c = server.client().await;
            c.join(&code, &format!("Student {i:02}")).await;
            joined.push(c);
        }
        Class {
            host,
            session,
            code,
            token,
            students: joined,
        }
    }
}

/// Writes like an editor does: a temp file renamed over the original.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("lua.tmp");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A protocol v1 client that tracks, per session, the view and the last seq.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub views: HashMap<String, Value>,
    pub last_seq: HashMap<String, u64>,
    /// Every frame received, in order.
    pub log: Vec<Value>,
    /// Frames received but not yet returned by `recv`/`recv_until`.
    unread: std::collections::VecDeque<Value>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio::time::timeout(
            TIMEOUT,
            tokio_tungstenite::connect_async(format!("ws://{addr}/games")),
        )
        .await
        .expect("connect timed out")
        .expect("websocket connects");
        Client {
            ws,
            views: HashMap::new(),
            last_seq: HashMap::new(),
            log: Vec::new(),
            unread: Default::default(),
        }
    }

    /// Connects with extra request headers (`Origin`, `X-Forwarded-For`):
    /// the server's answer to the upgrade, as a client or an HTTP error.
    pub async fn connect_with(
        addr: SocketAddr,
        headers: &[(&'static str, &str)],
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/games")
            .into_client_request()
            .expect("a request");
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, value.parse().expect("a header value"));
        }
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect timed out")?;
        Ok(Client {
            ws,
            views: HashMap::new(),
            last_seq: HashMap::new(),
            log: Vec::new(),
            unread: Default::default(),
        })
    }

    /// A client the server counts under `ip` (it trusts loopback proxies'
    /// `X-Forwarded-For`).
    pub async fn connect_as(addr: SocketAddr, ip: &str) -> Client {
        Client::connect_with(addr, &[("x-forwarded-for", ip)])
            .await
            .expect("websocket connects")
    }

    /// Sends raw bytes as one text frame, valid UTF-8 or not.
    pub async fn send_raw_text(&mut self, bytes: Vec<u8>) {
        use tokio_tungstenite::tungstenite::protocol::frame::{
            Frame, coding::Data, coding::OpCode,
        };
        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
        let _ = self.ws.send(Message::Frame(frame)).await;
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    /// Sends a frame; `false` if the server had already closed the socket.
    pub async fn try_send_text(&mut self, text: String) -> bool {
        self.ws.send(Message::Text(text.into())).await.is_ok()
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next frame not returned yet, or `None` if the server closed the socket.
    pub async fn try_recv(&mut self) -> Option<Value> {
        if let Some(v) = self.unread.pop_front() {
            return Some(v);
        }
        self.read_socket().await
    }

    /// Reads one frame from the socket (tracking views and seqs).
    async fn read_socket(&mut self) -> Option<Value> {
        // One deadline for the whole read: the server's pings (every 30 s)
        // must not keep a read that waits for a frame alive forever.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("no frame within the timeout")?;
            match msg {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("server frames are JSON");
                    self.track(&v);
                    self.log.push(v.clone());
                    return Some(v);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.try_recv().await.expect("socket closed")
    }

    /// The first frame not returned yet that matches; frames before it stay
    /// unread for later calls.
    pub async fn recv_until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        if let Some(i) = self.unread.iter().position(&mut pred) {
            return self.unread.remove(i).expect("index is in range");
        }
        loop {
            let v = self.read_socket().await.expect("socket closed");
            if pred(&v) {
                return v;
            }
            self.unread.push_back(v);
        }
    }

    pub async fn recv_type(&mut self, kind: &str) -> Value {
        self.recv_until(|v| v["type"] == kind).await
    }

    /// Reads until the tracked view of `session` satisfies `pred`.
    pub async fn wait_view(
        &mut self,
        session: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        loop {
            if let Some(v) = self.views.get(session)
                && pred(v)
            {
                return v.clone();
            }
            let v = self.read_socket().await.expect("socket closed");
            self.unread.push_back(v);
        }
    }

    fn track(&mut self, v: &Value) {
        let session = v["session"].as_str().unwrap_or_default().to_owned();
        // A resumed welcome is followed by the replay, whose messages carry
        // their original (lower) seq: only a fresh welcome moves last_seq.
        if let Some(seq) = v["seq"].as_u64()
            && v["resumed"] != true
        {
            let last = self.last_seq.entry(session.clone()).or_insert(0);
            if v["type"] != "welcome" {
                assert!(seq > *last, "seq went backwards: {seq} after {last} in {v}");
            }
            *last = (*last).max(seq);
        }
        match v["type"].as_str() {
            Some("welcome") if v["resumed"] != true => {
                self.views.insert(session, v["view"].clone());
            }
            Some("view") => {
                let entry = self.views.entry(session).or_insert_with(|| json!({}));
                view::apply(entry, &v["patch"]);
            }
            _ => {}
        }
    }

    pub async fn host(&mut self, game: &str, params: Value) -> Value {
        self.send(json!({"type": "host", "game": game, "params": params}))
            .await;
        let w = self.recv().await;
        assert_eq!(w["type"], "welcome", "host failed: {w}");
        w
    }

    pub async fn join(&mut self, code: &str, name: &str) -> Value {
        self.send(json!({"type": "join", "code": code, "name": name}))
            .await;
        let w = self
            .recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
            .await;
        assert_eq!(w["type"], "welcome", "join failed: {w}");
        w
    }

    /// Joins as a bot with `key`: the welcome, or the error.
    pub async fn join_bot(&mut self, code: &str, name: &str, key: Option<&str>) -> Value {
        self.send(json!({"type": "join", "code": code, "name": name, "role": "bot", "key": key}))
            .await;
        self.recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
            .await
    }

    /// Like `act`, but `None` when the server closes the socket instead.
    pub async fn try_act(&mut self, session: &str, name: &str, data: Value) -> Option<Value> {
        let r = format!("t{}", self.log.len());
        self.send(
            json!({"type": "action", "session": session, "name": name, "data": data, "ref": r}),
        )
        .await;
        loop {
            let v = self.try_recv().await?;
            if (v["type"] == "ack" || v["type"] == "error") && v["ref"] == r.as_str() {
                return Some(v);
            }
        }
    }

    /// Resumes a seat; returns the welcome (or the error).
    pub async fn resume(&mut self, token: &str, last_seq: u64) -> Value {
        self.send(json!({"type": "resume", "token": token, "last_seq": last_seq}))
            .await;
        self.recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
            .await
    }

    /// Sends an action with a ref and waits for its ack or error.
    pub async fn act(&mut self, session: &str, name: &str, data: Value) -> Value {
        let r = format!("r{}", self.log.len());
        self.send(
            json!({"type": "action", "session": session, "name": name, "data": data, "ref": r}),
        )
        .await;
        self.recv_until(|v| (v["type"] == "ack" || v["type"] == "error") && v["ref"] == r.as_str())
            .await
    }

    /// Reads until the server closes the socket; returns the close code.
    pub async fn wait_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("the socket was not closed within the timeout")?;
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A real `recess` binary on a free port, for crash and restart tests.
pub struct Process {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl Process {
    pub async fn spawn(games: &Path, data: &Path, extra: &[&str]) -> Process {
        Self::launch(games, data, extra, std::process::Stdio::null(), None).await
    }

    /// `spawn`, with the node's log written to `log` at `filter`
    /// (`RECESS_LOG`, e.g. `recess=debug`).
    pub async fn spawn_logged(
        games: &Path,
        data: &Path,
        extra: &[&str],
        log: &Path,
        filter: &str,
    ) -> Process {
        let file = std::fs::File::create(log).expect("create the log file");
        Self::launch(games, data, extra, file.into(), Some(filter)).await
    }

    async fn launch(
        games: &Path,
        data: &Path,
        extra: &[&str],
        stderr: std::process::Stdio,
        filter: Option<&str>,
    ) -> Process {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_recess"));
        if let Some(filter) = filter {
            command.env("RECESS_LOG", filter);
        }
        let mut child = command
            .arg("--port")
            .arg("0")
            .arg("--games")
            .arg(games)
            .arg("--data")
            .arg(data)
            .args(["--api-key", API_KEY])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn recess");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("recess printed nothing")
            .expect("read stdout")
            .expect("recess exited before listening");
        let addr = line
            .strip_prefix("recess listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .parse()
            .expect("address");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Process { child, addr }
    }

    /// `kill -9`.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    /// SIGTERM, then waits for the process to exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("the node did not exit after SIGTERM")
            .expect("wait")
    }
}

/// A small HTTP/1.1 client over a raw socket for REST calls, with the test
/// API key and a JSON body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = format!("Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n");
    http_with(addr, method, path, &headers, &body).await
}

/// An HTTP/1.1 request with exactly the given extra header lines (each
/// ending in CRLF); returns the status and the body.
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, headers, body).await;
    (status, body)
}

/// Like `http_with`, also returning the response's header block.
pub async fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut out))
        .await
        .expect("http timeout")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_owned(), dechunk(body))
}

fn dechunk(body: &str) -> String {
    // hyper answers with Content-Length for Full bodies; keep chunked support simple.
    body.to_owned()
}

/// `GET /api/sessions/{id}` on `addr` with the API key; fails unless 200.
pub async fn summary(addr: SocketAddr, session: &str) -> Value {
    let (status, body) = http(addr, "GET", &format!("/api/sessions/{session}"), None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("a JSON summary")
}

/// The results spreadsheet as the host downloads it, with their own token
/// (`GET /api/sessions/{id}/results?format=csv&token=...`); fails unless 200.
pub async fn results_csv(server: &TestServer, session: &str, token: &str) -> String {
    let path = format!("/api/sessions/{session}/results?format=csv&token={token}");
    let (status, csv) = http_with(server.addr, "GET", &path, "", "").await;
    assert_eq!(status, 200, "{csv}");
    csv
}
