//! Real `redis-server` and `nginx` processes on free ports, one set per test.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::TIMEOUT;

/// A free port on 127.0.0.1 (the OS picks it; it is free when returned).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        Self::start_on(free_port()).await
    }

    /// Starts redis-server on `port` and waits until it says it is ready.
    pub async fn start_on(port: u16) -> RedisServer {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--loglevel", "notice"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return;
                }
            }
            panic!("redis-server exited before it was ready");
        })
        .await
        .expect("redis-server did not start");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RedisServer {
            port,
            child: Some(child),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `kill -9`.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill redis");
        }
    }
}

/// nginx in front of some nodes: round-robin, no stickiness, WebSocket upgrade.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub async fn start(upstreams: &[SocketAddr]) -> Nginx {
        let dir = tempfile::tempdir().expect("nginx dir");
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let conf = include_str!("../../examples/cluster/nginx.conf.template")
            .replace("{{PREFIX}}", &dir.path().display().to_string())
            .replace("{{LISTEN}}", &format!("127.0.0.1:{port}"))
            .replace("{{UPSTREAMS}}", &servers);
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx is installed (scripts/test installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        // nginx prints nothing when ready; wait for its port to accept.
        tokio::time::timeout(TIMEOUT, async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("nginx did not start listening");
        Nginx {
            addr,
            child,
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn nginx_binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// Two real `recess` nodes, `a` and `b`, sharing one real Redis, each with
/// a data folder of its own, both started with `extra` flags too.
pub struct TwoNodes {
    pub a: super::Process,
    pub b: super::Process,
    pub redis: RedisServer,
    _data: [tempfile::TempDir; 2],
}

impl TwoNodes {
    pub async fn start(games: &Path, extra: &[&str]) -> TwoNodes {
        let redis = RedisServer::start().await;
        let url = redis.url();
        let data = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let node = |id: &'static str, data: &Path| {
            let mut flags = vec!["--redis", url.as_str(), "--node-id", id];
            flags.extend_from_slice(extra);
            let data = data.to_owned();
            async move { super::Process::spawn(games, &data, &flags).await }
        };
        let a = node("a", data[0].path()).await;
        let b = node("b", data[1].path()).await;
        TwoNodes {
            a,
            b,
            redis,
            _data: data,
        }
    }
}
