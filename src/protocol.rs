//! Wire protocol v1: every frame that crosses the WebSocket `/games`, in one place.
//!
//! Client frames are parsed into [`ClientFrame`]; server frames are built by the
//! `encode_*` functions, which serialize straight to the text that goes on the
//! wire. A session message is encoded once by its owner and the same bytes are
//! shared by every socket that delivers it (see `delivery`).
//! `docs/protocol.md` documents every frame with examples.
//!
//! The `ws_*` functions wrap a server frame in its WebSocket framing (RFC 6455
//! §5.2: a server's frames are unmasked, so a frame is a 2–10 byte header and
//! the payload as is). They use tungstenite's own frame encoder; the fanout
//! calls [`ws_text`] once per message per node and every socket writes the
//! same bytes.

use bytes::Bytes;
use hyper_tungstenite::tungstenite::protocol::CloseFrame;
use hyper_tungstenite::tungstenite::protocol::frame::Frame;
use hyper_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the players of a session are named (the `names` option of `host`
/// and `POST /api/sessions`, docs/protocol.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NameMode {
    /// Everyone sees the name a student typed.
    #[default]
    Typed,
    /// Everyone sees a generated name (`Brave Otter`); the name a student
    /// typed is their `real_name`, which only the rules see.
    Generated,
}

impl NameMode {
    pub(crate) fn is_typed(&self) -> bool {
        *self == NameMode::Typed
    }
}

/// A frame a client sends, already validated for shape.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    /// Start a session of `game`; the sender becomes its host.
    Host {
        game: String,
        #[serde(default)]
        params: Value,
        /// Required when the node runs with `--host-key`.
        #[serde(default)]
        key: Option<String>,
        /// `"typed"` (the default) or `"generated"`.
        #[serde(default)]
        names: NameMode,
    },
    /// Join a session by its 6-digit code. A client that retries a join whose
    /// answer it never got sends the same `nonce` and gets the same seat.
    Join {
        code: String,
        name: String,
        #[serde(default)]
        nonce: Option<String>,
        /// `"player"` (the default) or `"bot"`, which needs `key`.
        #[serde(default = "Role::joiner")]
        role: Role,
        /// An API key: what lets a backend join as a bot.
        #[serde(default)]
        key: Option<String>,
    },
    /// Come back after a dropped connection, on any node.
    Resume { token: String, last_seq: u64 },
    /// Run the game's `action` handler.
    Action {
        session: String,
        name: String,
        #[serde(default)]
        data: Value,
        /// Echoed in the `ack` (or `error`) once the handler has run.
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    /// Leave a session; the game's `leave` handler runs.
    Leave { session: String },
    /// Liveness probe (browsers cannot send WebSocket pings): answered `pong`.
    Ping {
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
}

/// The one nesting limit for data, wherever it comes from or goes: a client
/// frame's values (`data`, `params`, REST bodies), the game state, views and
/// `ctx` data. Far above what a game needs, and well under serde_json's
/// own limit (128), so anything accepted here can be stored and read back.
pub const MAX_DEPTH: usize = 64;

/// Refuses JSON text whose values nest deeper than [`MAX_DEPTH`] (the frame's
/// own object is one level more). One pass over the bytes, before parsing;
/// text that is not JSON is left for the parser to report.
pub(crate) fn check_depth(text: &[u8]) -> Result<(), ProtocolError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH + 1 {
                    return Err(ProtocolError::new(
                        ErrorCode::BadFrame,
                        format!("the frame's data nests deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

const CLIENT_TYPES: [&str; 6] = ["host", "join", "resume", "action", "leave", "ping"];

impl ClientFrame {
    /// Parses one text frame, telling bad JSON, unknown types and bad fields apart
    /// so the client gets an error it can act on.
    pub(crate) fn parse(text: &str) -> Result<ClientFrame, ProtocolError> {
        check_depth(text.as_bytes())?;
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => Ok(frame),
            Err(e) if e.is_syntax() || e.is_eof() => Err(ProtocolError::new(
                ErrorCode::BadJson,
                format!("the frame is not valid JSON: {e}"),
            )),
            Err(e) => {
                #[derive(Deserialize)]
                struct Tagged {
                    #[serde(rename = "type")]
                    kind: Option<Value>,
                }
                let kind = serde_json::from_str::<Tagged>(text)
                    .ok()
                    .and_then(|t| t.kind)
                    .and_then(|k| k.as_str().map(str::to_owned));
                match kind {
                    None => Err(ProtocolError::new(
                        ErrorCode::BadFrame,
                        "every frame must be a JSON object with a string field `type`",
                    )),
                    Some(k) if !CLIENT_TYPES.contains(&k.as_str()) => Err(ProtocolError::new(
                        ErrorCode::UnknownType,
                        format!(
                            "unknown frame type `{k}`; expected one of {}",
                            CLIENT_TYPES.join(", ")
                        ),
                    )),
                    Some(k) => Err(ProtocolError::new(
                        ErrorCode::BadFrame,
                        format!("bad `{k}` frame: {e}"),
                    )),
                }
            }
        }
    }

    /// The `ref` a frame carries, if any (echoed in its answer).
    pub(crate) fn reference(&self) -> Option<&Value> {
        match self {
            ClientFrame::Action { reference, .. } | ClientFrame::Ping { reference } => {
                reference.as_ref()
            }
            _ => None,
        }
    }

    /// The session a frame names, if any (for error frames).
    pub(crate) fn session(&self) -> Option<&str> {
        match self {
            ClientFrame::Action { session, .. } | ClientFrame::Leave { session } => Some(session),
            _ => None,
        }
    }
}

/// Stable machine words for `error.code`. Clients switch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    BadJson,
    BadFrame,
    UnknownType,
    TooLarge,
    UnknownGame,
    GameBroken,
    UnknownCode,
    UnknownSession,
    BadToken,
    NameInvalid,
    NameTaken,
    SessionFull,
    NotMember,
    Refused,
    ScriptError,
    Ended,
    Kicked,
    RateLimited,
    Unauthorized,
    Forbidden,
    UnsupportedMediaType,
    /// (REST) no route has that method and path.
    NoSuchRoute,
    AlreadyJoined,
    Overloaded,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status the REST API answers with for this error.
    pub(crate) fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadJson | ErrorCode::BadFrame | ErrorCode::NameInvalid => 400,
            ErrorCode::Unauthorized | ErrorCode::BadToken => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::UnknownGame
            | ErrorCode::UnknownCode
            | ErrorCode::UnknownSession
            | ErrorCode::NoSuchRoute => 404,
            ErrorCode::NameTaken
            | ErrorCode::SessionFull
            | ErrorCode::Refused
            | ErrorCode::Ended
            | ErrorCode::NotMember
            | ErrorCode::Kicked
            | ErrorCode::AlreadyJoined
            | ErrorCode::GameBroken => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::ScriptError | ErrorCode::UnknownType => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Overloaded | ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// An error a client can act on: a stable code and a sentence for a person.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{code:?}: {message}")]
pub(crate) struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited` (and `overloaded`): how long to wait before trying
    /// again, so a client can show a countdown instead of retrying blindly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ProtocolError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The same error, telling the client when to try again.
    pub(crate) fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
        self
    }
}

/// What a member is in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The member who created the session; only the host sees the join code.
    Host,
    /// A member who joined with the code.
    Player,
    /// A backend service that joined with the code and an API key: it gets
    /// what the rules send it and can act, but is not counted as a player.
    Bot,
}

impl Role {
    /// The role as the rules and the wire spell it: `host` or `player`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Player => "player",
            Role::Bot => "bot",
        }
    }

    /// The role a `join` gives when it names none.
    pub(crate) fn joiner() -> Role {
        Role::Player
    }

    pub(crate) fn is_player(&self) -> bool {
        *self == Role::Player
    }
}

/// The `player` object of a `welcome` and of the Lua API.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlayerRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub role: Role,
}

/// The fields of a `welcome` frame.
#[derive(Debug, Serialize)]
pub(crate) struct Welcome<'a> {
    pub session: &'a str,
    pub game: &'a str,
    pub role: Role,
    pub player: PlayerRef<'a>,
    pub token: &'a str,
    pub seq: u64,
    /// Absent when `resumed` is true: the client keeps its view and applies
    /// the replayed patches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Welcome(&'a Welcome<'a>),
    /// Written by `encode_view_raw`; this is the definition it is tested against.
    #[cfg_attr(not(test), allow(dead_code))]
    View {
        session: &'a str,
        seq: u64,
        patch: &'a Value,
    },
    Event {
        session: &'a str,
        seq: u64,
        name: &'a str,
        data: &'a Value,
    },
    Ack {
        #[serde(rename = "ref")]
        reference: &'a Value,
        session: &'a str,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<&'a str>,
        /// Only on errors that are session messages (a kick).
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Ended {
        session: &'a str,
        seq: u64,
        results: &'a Value,
    },
    Renamed {
        session: &'a str,
        seq: u64,
        player: &'a PlayerRef<'a>,
    },
    Pong {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Value>,
    },
}

fn encode(frame: &ServerFrame<'_>) -> String {
    // Serializing these types cannot fail: every map key is a string and every
    // value is already a `serde_json::Value` or a plain field.
    serde_json::to_string(frame).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a server frame failed to serialize");
        String::from(r#"{"type":"error","code":"internal","message":"frame encoding failed"}"#)
    })
}

pub(crate) fn encode_welcome(w: &Welcome<'_>) -> String {
    encode(&ServerFrame::Welcome(w))
}

pub(crate) fn encode_event(session: &str, seq: u64, name: &str, data: &Value) -> String {
    encode(&ServerFrame::Event {
        session,
        seq,
        name,
        data,
    })
}

pub(crate) fn encode_ack(reference: &Value, session: &str) -> String {
    encode(&ServerFrame::Ack { reference, session })
}

pub(crate) fn encode_error(
    err: &ProtocolError,
    reference: Option<&Value>,
    session: Option<&str>,
) -> String {
    encode(&ServerFrame::Error {
        code: err.code,
        message: &err.message,
        reference,
        session,
        seq: None,
        retry_after_ms: err.retry_after_ms,
    })
}

/// An error that is also a session message (it has a `seq`), such as a kick.
pub(crate) fn encode_session_error(err: &ProtocolError, session: &str, seq: u64) -> String {
    encode(&ServerFrame::Error {
        code: err.code,
        message: &err.message,
        reference: None,
        session: Some(session),
        seq: Some(seq),
        retry_after_ms: err.retry_after_ms,
    })
}

/// A `view` frame around a patch that is already JSON text (patches are
/// serialized once and shared by every member that gets the same one). The
/// same bytes as encoding `ServerFrame::View` (tested).
pub(crate) fn encode_view_raw(session: &str, seq: u64, patch_json: &str) -> String {
    let session = serde_json::to_string(session).unwrap_or_else(|_| "\"\"".to_owned());
    format!(r#"{{"type":"view","session":{session},"seq":{seq},"patch":{patch_json}}}"#)
}

pub(crate) fn encode_pong(reference: Option<&Value>) -> String {
    encode(&ServerFrame::Pong { reference })
}

/// The game renamed you (`ctx.rename`): a session message to that member.
pub(crate) fn encode_renamed(session: &str, seq: u64, player: &PlayerRef<'_>) -> String {
    encode(&ServerFrame::Renamed {
        session,
        seq,
        player,
    })
}

pub(crate) fn encode_ended(session: &str, seq: u64, results: &Value) -> String {
    encode(&ServerFrame::Ended {
        session,
        seq,
        results,
    })
}

/// A whole WebSocket text frame (header + payload) carrying `json`, ready
/// to be written to any number of sockets.
pub(crate) fn ws_text(json: impl Into<Bytes>) -> Bytes {
    ws_frame(Frame::message(json, OpCode::Data(Data::Text), true))
}

/// A WebSocket close frame with `code` and `reason` (at most 123 bytes, as
/// control frames carry at most 125).
pub(crate) fn ws_close(code: u16, reason: &'static str) -> Bytes {
    ws_frame(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    })))
}

/// An empty WebSocket ping frame (the server's keep-alive).
pub(crate) fn ws_ping() -> Bytes {
    ws_frame(Frame::ping(Bytes::new()))
}

fn ws_frame(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    // Formatting into a Vec cannot fail: `Vec`'s `Write` never errors.
    if let Err(e) = frame.format(&mut out) {
        tracing::error!(error = %e, "a websocket frame failed to encode");
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_tungstenite::tungstenite::protocol::{Role, WebSocket};
    use hyper_tungstenite::tungstenite::{Error, Message};

    #[test]
    fn a_raw_view_frame_is_the_defined_view_frame() {
        let patch = serde_json::json!({"a": {"b": [1, "x\"y"]}, "c": null});
        for session in ["s7k2m9x4q8pa", "needs \"escaping\""] {
            let defined = encode(&ServerFrame::View {
                session,
                seq: 42,
                patch: &patch,
            });
            assert_eq!(encode_view_raw(session, 42, &patch.to_string()), defined);
        }
    }

    /// Decodes server frames with tungstenite's own client.
    fn decode(wire: &[u8]) -> Vec<Message> {
        struct Once(std::io::Cursor<Vec<u8>>);
        impl std::io::Read for Once {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl std::io::Write for Once {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let io = Once(std::io::Cursor::new(wire.to_vec()));
        let mut ws = WebSocket::from_raw_socket(io, Role::Client, None);
        let mut out = Vec::new();
        loop {
            match ws.read() {
                Ok(m) => out.push(m),
                Err(Error::Protocol(_) | Error::ConnectionClosed | Error::AlreadyClosed) => {
                    return out;
                }
                Err(e) => panic!("undecodable: {e}"),
            }
        }
    }

    #[test]
    fn ws_frames_decode_with_tungstenite() {
        // Every length encoding: 7-bit, 16-bit and 64-bit.
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
            let text = "x".repeat(len);
            let wire = ws_text(text.clone());
            let header = match len {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(wire.len(), header + len, "length {len}");
            assert_eq!(wire[0], 0x81, "FIN + text");
            assert_eq!(wire[1] & 0x80, 0, "server frames are not masked");
            assert_eq!(decode(&wire), [Message::Text(text.into())]);
        }
        let mut wire = ws_text(r#"{"type":"ack"}"#).to_vec();
        wire.extend_from_slice(&ws_ping());
        wire.extend_from_slice(&ws_text("é✓"));
        wire.extend_from_slice(&ws_close(1008, "too slow"));
        let got = decode(&wire);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], Message::Text(r#"{"type":"ack"}"#.into()));
        assert_eq!(got[1], Message::Ping(Bytes::new()));
        assert_eq!(got[2], Message::Text("é✓".into()));
        match &got[3] {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 1008);
                assert_eq!(f.reason.as_str(), "too slow");
            }
            other => panic!("not a close: {other:?}"),
        }
    }

    #[test]
    fn parse_tells_errors_apart() {
        assert_eq!(
            ClientFrame::parse("{nope").unwrap_err().code,
            ErrorCode::BadJson
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"dance"}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
        let e = ClientFrame::parse(r#"{"type":"join","name":"Ana"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadFrame);
        assert!(e.message.contains("code"), "{}", e.message);
        assert_eq!(
            ClientFrame::parse("[1]").unwrap_err().code,
            ErrorCode::BadFrame
        );
    }

    #[test]
    fn frames_nested_deeper_than_the_limit_are_refused() {
        let frame = |levels: usize| {
            format!(
                r#"{{"type":"action","session":"s1","name":"a","data":{}1{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(ClientFrame::parse(&frame(MAX_DEPTH)).is_ok());
        let e = ClientFrame::parse(&frame(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadFrame);
        assert!(e.message.contains("deeper than 64"), "{}", e.message);
        // Brackets inside strings (and escaped quotes) are not nesting.
        let text = format!(
            r#"{{"type":"action","session":"s1","name":"a","data":"\"{}"}}"#,
            "[".repeat(200)
        );
        assert!(ClientFrame::parse(&text).is_ok());
    }

    #[test]
    fn parse_ignores_unknown_fields() {
        let f = ClientFrame::parse(r#"{"type":"leave","session":"s1","extra":true}"#).unwrap();
        assert!(matches!(f, ClientFrame::Leave { session } if session == "s1"));
    }

    #[test]
    fn ack_carries_ref() {
        let s = encode_ack(&Value::from(7), "s1");
        assert_eq!(s, r#"{"type":"ack","ref":7,"session":"s1"}"#);
    }
}
