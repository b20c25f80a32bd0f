//! Joining from the classroom: `GET /api/join` names the address students'
//! devices open, and `GET /join.svg?code=` is the QR code of it with the
//! join code, read back here (parsed as XML, drawn, decoded) over a real
//! server on 127.0.0.1.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// The public URL the tests pass: a documentation address, never dialled.
const PUBLIC: &str = "http://192.0.2.10:8123";

/// `GET path`: status, header block (lowercased), body.
async fn get(server: &TestServer, path: &str) -> (u16, String, String) {
    let (status, head, body) = common::http_full(server.addr, "GET", path, "", "").await;
    (status, head.to_ascii_lowercase(), body)
}

/// Draws the SVG the server sends (a white `rect`, then every dark module
/// as a `M x y h w v h H x V y` run of one `path`) into a greyscale picture
/// and decodes the QR code in it.
fn decode_svg(svg: &str) -> String {
    let doc = roxmltree::Document::parse(svg).expect("the QR code is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let number = |n: roxmltree::Node, a: &str| -> usize {
        n.attribute(a)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{a} of {n:?}"))
    };
    let (w, h) = (number(root, "width"), number(root, "height"));
    assert!(
        w >= 256 && w == h,
        "a square of at least 256 units: {w}x{h}"
    );
    let children: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(
        children
            .iter()
            .map(|n| n.tag_name().name())
            .collect::<Vec<_>>(),
        ["rect", "path"],
        "a background and one path of dark modules"
    );
    assert!(root.descendants().all(|n| n.tag_name().name() != "script"));
    let mut dark = vec![false; w * h];
    let d = children[1].attribute("d").expect("the path's data");
    for run in d.split('M').filter(|r| !r.is_empty()) {
        // "x y h W v H H x V y"
        let nums: Vec<usize> = run
            .split(|c: char| c.is_ascii_alphabetic() || c == ' ')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("a whole number"))
            .collect();
        let [x, y, rw, rh, ..] = nums[..] else {
            panic!("a rectangle: {run}")
        };
        for row in y..y + rh {
            for col in x..x + rw {
                dark[row * w + col] = true;
            }
        }
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(
            w,
            h,
            |x, y| {
                if dark[y * w + x] { 0 } else { 255 }
            },
        );
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().expect("the QR code decodes").1
}

#[tokio::test]
async fn the_qr_code_holds_the_public_url_with_the_join_code() {
    let server = TestServer::start_in(common::games_dir_with_shipped(), |c| {
        c.public_url = Some(recess::config::parse_public_url(PUBLIC).expect("a valid URL"));
    })
    .await;
    let mut host = server.client().await;
    let welcome = host.host("quiz", json!({})).await;
    let code = welcome["code"].as_str().expect("a join code").to_owned();

    let (status, head, body) = get(&server, "/api/join").await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let info: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        info,
        json!({"url": format!("{PUBLIC}/"), "reachable": true, "source": "public_url"})
    );

    let (status, head, svg) = get(&server, &format!("/join.svg?code={code}")).await;
    assert_eq!(status, 200, "{svg}");
    assert!(head.contains("content-type: image/svg+xml"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert_eq!(decode_svg(&svg), format!("{PUBLIC}/?code={code}"));

    // The page students open there may open a game socket (its origin is
    // allowed without --allowed-origins); another origin still may not.
    let mut student = common::Client::connect_with(server.addr, &[("origin", PUBLIC)])
        .await
        .expect("the public URL's page may connect");
    let joined = student.join(&code, "Ana").await;
    assert_eq!(joined["type"], "welcome", "{joined}");
    let other =
        common::Client::connect_with(server.addr, &[("origin", "http://192.0.2.11:8123")]).await;
    assert!(other.is_err(), "another origin is refused");
    server.stop().await;
}

#[tokio::test]
async fn on_loopback_alone_the_address_is_marked_unreachable_and_codes_are_checked() {
    let server = TestServer::start().await;
    let (status, _, body) = get(&server, "/api/join").await;
    assert_eq!(status, 200, "{body}");
    let info: Value = serde_json::from_str(&body).expect("JSON");
    let port = server.addr.port();
    assert_eq!(
        info,
        json!({"url": format!("http://127.0.0.1:{port}/"), "reachable": false, "source": "loopback"})
    );
    // The QR code is drawn for any 6 digits (nothing is looked up, so it
    // tells nobody which codes are live), and only for 6 digits.
    let (status, _, svg) = get(&server, "/join.svg?code=123456").await;
    assert_eq!(status, 200);
    assert_eq!(
        decode_svg(&svg),
        format!("http://127.0.0.1:{port}/?code=123456")
    );
    for bad in [
        "",
        "?code=",
        "?code=12345",
        "?code=1234567",
        "?code=12a456",
        "?x=123456",
    ] {
        let (status, _, body) = get(&server, &format!("/join.svg{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("6-digit join code"), "{body}");
    }
    server.stop().await;
}

#[test]
fn public_urls_are_checked_and_kept_with_one_slash() {
    use recess::config::parse_public_url;
    assert_eq!(
        parse_public_url("https://games.school.example").as_deref(),
        Ok("https://games.school.example/")
    );
    assert_eq!(
        parse_public_url("http://10.0.0.5:8080/recess//").as_deref(),
        Ok("http://10.0.0.5:8080/recess/")
    );
    for bad in [
        "games.school.example",
        "ftp://x",
        "http://",
        "http://:80",
        "http://x/?a=1",
        "http://x/#y",
        "http://a b",
    ] {
        assert!(parse_public_url(bad).is_err(), "{bad}");
    }
}
