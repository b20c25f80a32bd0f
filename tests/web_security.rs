//! The security review's findings on names, the CSV export, `/custom/` files
//! and page headers, over the real protocol and HTTP.

mod common;

use common::{Client, TestServer};
use serde_json::{Value, json};

/// Every player who joins is a row of the results; the host's `finish`
/// action ends the game with the scores it is given.
const ROSTER: &str = r#"
return {
  title = "Roster",
  init = function(ctx, params) return { names = {} } end,
  join = function(state, ctx, player)
    if player.role == "player" then state.names[#state.names + 1] = player.name end
  end,
  action = function(state, ctx, player, name, data)
    if name ~= "finish" or player.role ~= "host" then return false, "no" end
    local rows = {}
    for i, n in ipairs(state.names) do
      rows[i] = { rank = i, name = n, score = data.scores[i] }
    end
    ctx.finish({ columns = { "rank", "name", "score" }, rows = rows })
  end,
  view = function(state, player) return { title = "Roster" } end,
}
"#;

/// A join from a fresh socket: its `welcome` or `error`.
async fn try_join(server: &TestServer, code: &str, name: &str) -> Value {
    let mut c: Client = server.client().await;
    c.send(json!({"type": "join", "code": code, "name": name}))
        .await;
    c.recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
        .await
}

#[tokio::test]
async fn names_refuse_invisible_characters_and_lookalikes() {
    let server = TestServer::with_games(&[("roster.lua", ROSTER)]).await;
    let mut host = server.client().await;
    let w = host.host("roster", json!({})).await;
    let code = w["code"].as_str().unwrap().to_owned();

    for name in ["Ana", "José"] {
        let w = try_join(&server, &code, name).await;
        assert_eq!(w["type"], "welcome", "{name:?}: {w}");
    }
    for name in [
        "\u{202e}Ana",
        "A\u{200b}na",
        "\u{feff}Ana",
        "\u{200b}\u{200d}",
        "\u{3164}",
        "\u{0301}",
    ] {
        let e = try_join(&server, &code, name).await;
        assert_eq!(e["code"], "name_invalid", "{name:?}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("names cannot contain")
                || e["message"].as_str().unwrap().contains("marks"),
            "{e}"
        );
    }
    // Cyrillic А, full-width Ａ, capitals, and José decomposed (NFD).
    for name in ["\u{410}na", "\u{ff21}na", "ANA", "Jose\u{301}"] {
        let e = try_join(&server, &code, name).await;
        assert_eq!(e["code"], "name_taken", "{name:?}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .ends_with("is already taken in this game; pick another"),
            "{e}"
        );
    }
    // A class's real names still join, stored as NFC.
    for name in [
        "Zoë Müller",
        "Ольга",
        "محمد",
        "علی\u{200c}رضا",
        "山田　太郎",
        "김민준",
        "प्रिया",
        "Sam 🦊",
        "👩\u{200d}🚀",
        "Nguye\u{302}\u{303}n",
    ] {
        let w = try_join(&server, &code, name).await;
        assert_eq!(w["type"], "welcome", "{name:?}: {w}");
        let nfc: String = unicode_normalization::UnicodeNormalization::nfc(name).collect();
        assert_eq!(w["player"]["name"], nfc.as_str());
    }
    server.stop().await;
}

#[tokio::test]
async fn results_csv_quotes_every_field_and_neutralises_formulas() {
    let server = TestServer::with_games(&[("roster.lua", ROSTER)]).await;
    let mut host = server.client().await;
    let w = host.host("roster", json!({})).await;
    let code = w["code"].as_str().unwrap().to_owned();
    let session = w["session"].as_str().unwrap().to_owned();
    let names = [
        "x;=cmd|' /C calc'!A0",
        "=HYPERLINK(\"http://e\")",
        "@SUM(1+1)",
        "Ana, B",
        "Bo",
    ];
    for name in names {
        let w = try_join(&server, &code, name).await;
        assert_eq!(w["type"], "welcome", "{name:?}: {w}");
    }
    let ack = host
        .act(&session, "finish", json!({"scores": [-5, 10, 0, 3, 7]}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    host.recv_type("ended").await;

    let path = format!("/api/sessions/{session}/results?format=csv");
    let (status, body) = common::http(server.addr, "GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "\"rank\",\"name\",\"score\"\r\n\
         \"1\",\"x;'=cmd|' /C calc'!A0\",\"-5\"\r\n\
         \"2\",\"'=HYPERLINK(\"\"http://e\"\")\",\"10\"\r\n\
         \"3\",\"'@SUM(1+1)\",\"0\"\r\n\
         \"4\",\"Ana, B\",\"3\"\r\n\
         \"5\",\"Bo\",\"7\"\r\n"
    );
    // Read back as written, every name is there behind its apostrophe.
    let mut rows = csv::Reader::from_reader(body.as_bytes());
    let read: Vec<String> = rows
        .records()
        .map(|r| r.unwrap()[1].trim_start_matches('\'').to_owned())
        .collect();
    assert_eq!(read, names.map(|n| n.replacen(";=", ";'=", 1)));
    // What a spreadsheet that splits on `;` (or `|`) sees: no cell is a formula.
    for delimiter in [b';', b'|', b'\t'] {
        let mut rows = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(body.as_bytes());
        for record in rows.records() {
            for cell in record.unwrap().iter() {
                let cell = cell.trim_start_matches([' ', '"']);
                let number = cell.trim_end_matches('"').parse::<f64>().is_ok();
                assert!(
                    number || !cell.starts_with(['=', '+', '-', '@']),
                    "{cell:?} split on {:?}",
                    delimiter as char
                );
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn custom_files_do_not_follow_symlinks_out_of_the_game_folder() {
    let init = "return { init = function() return {} end, view = function() return {} end }";
    let server = TestServer::with_games(&[
        ("evil/init.lua", init),
        ("evil/client.html", "<h1>evil</h1>"),
        ("evil/app.js", "// app"),
    ])
    .await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "the secret").unwrap();
    std::fs::write(outside.path().join("init.lua"), init).unwrap();
    std::fs::write(outside.path().join("client.html"), "<h1>elsewhere</h1>").unwrap();
    let games = server.games.path();
    let link = |target: &std::path::Path, at: &str| {
        std::os::unix::fs::symlink(target, games.join(at)).unwrap();
    };
    link(&outside.path().join("secret.txt"), "evil/passwd.json");
    link(std::path::Path::new("/etc/passwd"), "evil/etc.json");
    link(std::path::Path::new("../../x/secret.txt"), "evil/dots.js");
    link(outside.path(), "evil/sub.css");
    link(std::path::Path::new("app.js"), "evil/alias.js");
    // A whole game folder linked in from elsewhere.
    link(outside.path(), "linked");

    for path in [
        "/custom/evil/passwd.json",
        "/custom/evil/etc.json",
        "/custom/evil/dots.js",
        "/custom/evil/sub.css",
        "/custom/linked/client.html",
    ] {
        let (status, body) = common::http(server.addr, "GET", path, None).await;
        assert_eq!((status, body.as_str()), (404, "not found"), "{path}");
    }
    // Files of the folder itself, and links that stay inside it, still work.
    let (status, body) = common::http(server.addr, "GET", "/custom/evil/client.html", None).await;
    assert_eq!((status, body.as_str()), (200, "<h1>evil</h1>"));
    let (status, body) = common::http(server.addr, "GET", "/custom/evil/alias.js", None).await;
    assert_eq!((status, body.as_str()), (200, "// app"));
    server.stop().await;
}

/// `GET path` with the given `Host`: status, headers (names lowercased), body.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    host: &str,
) -> (u16, std::collections::HashMap<String, String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(common::TIMEOUT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

#[tokio::test]
async fn pages_and_custom_files_carry_a_content_security_policy() {
    let init = "return { init = function() return {} end, view = function() return {} end }";
    let server = TestServer::with_games(&[
        ("space/init.lua", init),
        ("space/client.html", "<h1>space</h1>"),
        ("space/client.js", "// space"),
    ])
    .await;
    let host = "class.example:8080";
    let page_policy = "default-src 'self'; script-src 'self'; style-src 'self'; \
        img-src 'self' data: https: http:; \
        connect-src 'self' ws://class.example:8080 wss://class.example:8080; \
        object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    let custom_policy =
        page_policy.replace("style-src 'self';", "style-src 'self' 'unsafe-inline';");
    for (path, status, policy) in [
        ("/", 200, &page_policy.to_owned()),
        ("/host", 200, &page_policy.to_owned()),
        ("/recess.js", 200, &page_policy.to_owned()),
        ("/style.css", 200, &page_policy.to_owned()),
        ("/nope.html", 404, &page_policy.to_owned()),
        ("/custom/space/client.html", 200, &custom_policy),
        ("/custom/space/client.js", 200, &custom_policy),
        ("/custom/space/missing.js", 404, &custom_policy),
    ] {
        let (got, headers, _) = get(server.addr, path, host).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(
            headers.get("content-security-policy"),
            Some(policy),
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    // A Host that could smuggle a directive names no socket source.
    let (_, headers, _) = get(server.addr, "/", "evil;script-src *").await;
    assert!(
        headers["content-security-policy"].contains("connect-src 'self'; object-src"),
        "{headers:?}"
    );
    // The pages need no inline script, style or handler that the policy blocks.
    for path in ["/", "/host"] {
        let (_, _, body) = get(server.addr, path, host).await;
        for tag in body.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap();
            if tag.starts_with("script") {
                assert!(tag.contains(" src="), "inline script on {path}: <{tag}>");
            }
            assert!(!tag.starts_with("style"), "inline style on {path}");
            assert!(
                !tag.contains(" style="),
                "style attribute on {path}: <{tag}>"
            );
            assert!(!tag.contains(" on"), "handler attribute on {path}: <{tag}>");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_restored_session_still_refuses_lookalikes_of_its_names() {
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("roster.lua"), ROSTER).unwrap();
    let data = tempfile::tempdir().unwrap();
    let node = common::Process::spawn(games.path(), data.path(), &[]).await;
    let mut host = Client::connect(node.addr).await;
    let code = host.host("roster", json!({})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ana = Client::connect(node.addr).await;
    ana.join(&code, "Ana").await;
    node.kill().await;

    let node = common::Process::spawn(games.path(), data.path(), &[]).await;
    let mut twin = Client::connect(node.addr).await;
    twin.send(json!({"type": "join", "code": code, "name": "\u{410}NA"}))
        .await;
    let e = twin
        .recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
        .await;
    assert_eq!(e["code"], "name_taken", "{e}");
    node.kill().await;
}
