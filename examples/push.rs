//! A grading service: pushes points into a running quiz over the REST API
//! (the quiz's `award` event, docs/lua-api.md §16), as a backend that marks
//! lab reports or homework elsewhere would.
//!
//! ```text
//! RECESS_API_KEY=KEY cargo run --example push -- --session s7k2m9x4q8pa \
//!     --points Ana=200 --points "Ben Ode=150" --reason "Lab report"
//! ```
//!
//! It is one `POST /api/sessions/{id}/events` (docs/api.md), the same as:
//!
//! ```text
//! curl -X POST http://127.0.0.1:8080/api/sessions/s7k2m9x4q8pa/events \
//!   -H "Authorization: Bearer $RECESS_API_KEY" -H "Content-Type: application/json" \
//!   -d '{"name": "award", "data": {"points": {"Ana": 200, "Ben Ode": 150}, "reason": "Lab report"}}'
//! ```
//!
//! Any node of a cluster takes it, whichever owns the session. Students are
//! named as the class sees them, as they typed their name, or by player id
//! (`GET /api/sessions/{id}` lists them). The quiz refuses the whole push
//! (`409 refused`, with the reason) if one name is unknown; this tool then
//! exits non-zero and changes nothing.

use std::process::ExitCode;

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

#[derive(Parser)]
#[command(about = "Pushes points into a running Recess quiz")]
struct Args {
    /// The node's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    node: String,
    /// The session's id (from `POST /api/sessions`, or the host's welcome).
    #[arg(long)]
    session: String,
    /// `NAME=POINTS`, once per student (points may be negative).
    #[arg(long = "points", value_parser = parse_points, required = true)]
    points: Vec<(String, i64)>,
    /// What the points are for; each student is told.
    #[arg(long)]
    reason: Option<String>,
    /// One of the node's API keys.
    #[arg(long, env = "RECESS_API_KEY", hide_env_values = true)]
    key: String,
}

fn parse_points(arg: &str) -> Result<(String, i64), String> {
    let (name, points) = arg
        .rsplit_once('=')
        .ok_or_else(|| format!("`{arg}`: write NAME=POINTS"))?;
    let points = points
        .trim()
        .parse()
        .map_err(|_| format!("`{arg}`: the points must be a whole number"))?;
    Ok((name.trim().to_owned(), points))
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match push(&args).await {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("push: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends the event; the response body on success.
async fn push(args: &Args) -> Result<String, Error> {
    let points: Map<String, Value> = args
        .points
        .iter()
        .map(|(name, n)| (name.clone(), json!(n)))
        .collect();
    let body = json!({"name": "award", "data": {"points": points, "reason": args.reason}});
    let stream = tokio::net::TcpStream::connect(&args.node).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::post(format!("/api/sessions/{}/events", args.session))
        .header(HOST, &args.node)
        .header(AUTHORIZATION, format!("Bearer {}", args.key))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let text =
        String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes()).into_owned();
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("{status}: {text}").into())
    }
}
