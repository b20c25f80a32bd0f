//! The node and the open-file limit: `--max-connections` is fitted under the
//! limit at start, and an accept that fails for want of descriptors rests
//! instead of spinning a core and flooding the log. A test binary of its own:
//! it lowers this process's limit for a moment.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{API_KEY, TestServer, http};

/// The tests take turns: one lowers the limit every thread of this process
/// shares.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

fn nofile() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

fn set_nofile(limit: &libc::rlimit) {
    // SAFETY: setrlimit reads the struct it is given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loop_rests_instead_of_spinning() {
    let _turn = SERIAL.lock().await;
    let server = TestServer::start().await;
    let port = server.addr.port();
    // A client in another process (whose descriptors are its own), waiting
    // for the word to connect and ask for /healthz.
    let mut client = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "read go; exec 3<>/dev/tcp/127.0.0.1/{port}; \
             printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3; \
             head -c 12 <&3"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut go = client.stdin.take().unwrap();
    let mut answer = client.stdout.take().unwrap();
    let running = server.server.as_ref().unwrap();

    // Not one descriptor more: the node cannot accept the client.
    let saved = nofile();
    let open = open_fds() - 1; // read_dir's own descriptor is closed again
    set_nofile(&libc::rlimit {
        rlim_cur: open,
        rlim_max: saved.rlim_max,
    });
    go.write_all(b"go\n").unwrap();
    // The client connects (the kernel completes the handshake); accepting
    // fails for as long as the limit holds.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failures = running.metric("accept_errors_total").unwrap();
    set_nofile(&saved);

    assert!(failures >= 1, "the node tried to accept");
    assert!(
        failures <= 20,
        "{failures} failed accepts in a second: the loop spins"
    );
    // With descriptors again, the waiting client is served.
    let mut status = String::new();
    answer.read_to_string(&mut status).unwrap();
    assert_eq!(status, "HTTP/1.1 200");
    let _ = client.wait();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_fitted_under_the_open_file_limit() {
    let _turn = SERIAL.lock().await;
    let games = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_recess"));
    command
        .args([
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--max-connections",
            "20000",
        ])
        .arg("--games")
        .arg(games.path())
        .arg("--data")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit, which is async-signal-safe, runs in the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 200,
                rlim_max: 200,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().expect("recess starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("recess listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .parse()
        .unwrap();
    let (status, body) = http(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        body.lines().any(|l| l == "recess_connections_max 136"),
        "200 open files less 64 kept for the rest: {body}"
    );
    child.kill().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("open-file limit"), "a warning says why: {log}");
    let _ = child.wait();
}
