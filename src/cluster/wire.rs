//! What nodes say to each other over Redis: commands forwarded to a session's
//! owner, their replies, and batches of session messages.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use crate::protocol::ProtocolError;
use crate::session::{Attached, Command, MemberId, Outgoing, SessionSummary};
use crate::session::record::{decode_message, encode_message};

/// A `Command` without its reply channel, as it crosses the network.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoteCommand {
    Join {
        member: String,
        secret: String,
        name: String,
        nonce: Option<String>,
    },
    Resume {
        member: String,
        secret: String,
        last_seq: u64,
    },
    Action {
        member: String,
        name: String,
        data: Json,
    },
    Leave {
        member: String,
    },
    Disconnected {
        member: String,
    },
    Reattach {
        member: String,
    },
    Event {
        name: String,
        data: Json,
    },
    Broadcast {
        name: String,
        data: Json,
    },
    Summary,
    Results {
        host: Option<(String, String)>,
    },
}

/// The answer to a `RemoteCommand`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoteReply {
    Attached {
        member: String,
        seq: u64,
        frames: Vec<String>,
    },
    Done,
    Seq {
        seq: u64,
    },
    Summary {
        summary: Json,
    },
    Results {
        results: Option<Json>,
    },
    Failed {
        error: ProtocolError,
    },
}

/// A request on a node's channel.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub from: String,
    pub session: String,
    pub command: RemoteCommand,
}

/// A reply on the asking node's channel.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub reply_to: u64,
    pub reply: RemoteReply,
}

/// Either, as read from a node channel.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NodeMessage {
    Request(Request),
    Response(Response),
}

impl RemoteCommand {
    /// Whether the sender waits for an answer (the others are notices).
    pub fn wants_reply(&self) -> bool {
        !matches!(
            self,
            RemoteCommand::Leave { .. }
                | RemoteCommand::Disconnected { .. }
                | RemoteCommand::Reattach { .. }
        )
    }

    /// Turns the command into a local one; the receiver yields its reply.
    pub fn into_local(self) -> (Option<Command>, oneshot::Receiver<RemoteReply>) {
        let (tx, rx) = oneshot::channel();
        fn reply<T: Send + 'static>(
            tx: oneshot::Sender<RemoteReply>,
            map: impl FnOnce(T) -> RemoteReply + Send + 'static,
        ) -> oneshot::Sender<Result<T, ProtocolError>> {
            let (inner_tx, inner_rx) = oneshot::channel::<Result<T, ProtocolError>>();
            tokio::spawn(async move {
                let r = match inner_rx.await {
                    Ok(Ok(v)) => map(v),
                    Ok(Err(error)) => RemoteReply::Failed { error },
                    Err(_) => RemoteReply::Failed {
                        error: crate::node::unknown_session(),
                    },
                };
                let _ = tx.send(r);
            });
            inner_tx
        }
        let attached = |a: Attached| RemoteReply::Attached {
            member: a.member.to_string(),
            seq: a.seq,
            frames: a.frames.iter().map(|f| f.as_str().to_owned()).collect(),
        };
        let cmd = match self {
            RemoteCommand::Join {
                member,
                secret,
                name,
                nonce,
            } => Some(Command::Join {
                member: member.into(),
                secret,
                name,
                nonce,
                reply: reply(tx, attached),
            }),
            RemoteCommand::Resume {
                member,
                secret,
                last_seq,
            } => Some(Command::Resume {
                member: member.into(),
                secret,
                last_seq,
                reply: reply(tx, attached),
            }),
            RemoteCommand::Action { member, name, data } => Some(Command::Action {
                member: member.into(),
                name,
                data,
                reply: reply(tx, |()| RemoteReply::Done),
            }),
            RemoteCommand::Event { name, data } => Some(Command::Event {
                name,
                data,
                reply: reply(tx, |()| RemoteReply::Done),
            }),
            RemoteCommand::Broadcast { name, data } => Some(Command::Broadcast {
                name,
                data,
                reply: reply(tx, |seq| RemoteReply::Seq { seq }),
            }),
            RemoteCommand::Summary => Some(Command::Summary {
                reply: reply(tx, |s: SessionSummary| RemoteReply::Summary {
                    summary: serde_json::to_value(s).unwrap_or_default(),
                }),
            }),
            RemoteCommand::Results { host } => Some(Command::Results {
                host: host.map(|(m, s)| (MemberId::from(m), s)),
                reply: reply(tx, |results| RemoteReply::Results { results }),
            }),
            RemoteCommand::Leave { member } => {
                let _ = tx.send(RemoteReply::Done);
                Some(Command::Leave {
                    member: member.into(),
                })
            }
            RemoteCommand::Disconnected { member } => {
                let _ = tx.send(RemoteReply::Done);
                Some(Command::Disconnected {
                    member: member.into(),
                })
            }
            RemoteCommand::Reattach { member } => {
                let _ = tx.send(RemoteReply::Done);
                Some(Command::Reattach {
                    member: member.into(),
                })
            }
        };
        (cmd, rx)
    }
}

/// A batch of session messages on a session channel:
/// `[origin len:1][origin][count:4]([len:4][message])*`.
pub fn encode_batch(origin: &str, messages: &[Outgoing]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(64 + messages.iter().map(|m| m.frame.len() + 32).sum::<usize>());
    out.push(origin.len().min(255) as u8);
    out.extend_from_slice(&origin.as_bytes()[..origin.len().min(255)]);
    out.extend_from_slice(&(messages.len() as u32).to_be_bytes());
    for m in messages {
        let encoded = encode_message(m);
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

/// The origin node and messages of a batch; `None` if it is malformed.
pub fn decode_batch(bytes: &[u8]) -> Option<(String, Vec<Outgoing>)> {
    let olen = *bytes.first()? as usize;
    let origin = std::str::from_utf8(bytes.get(1..1 + olen)?)
        .ok()?
        .to_owned();
    let mut at = 1 + olen;
    let count = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let mut messages = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        messages.push(decode_message(bytes.get(at..at + len)?).ok()?);
        at += len;
    }
    Some((origin, messages))
}

/// Delivers a remote reply to the local command's reply channel.
pub type ReplyAdapter = Box<dyn FnOnce(Result<RemoteReply, ProtocolError>) + Send>;

impl RemoteCommand {
    /// Splits a local command into what crosses the network and how to hand
    /// the answer back to whoever is waiting for it.
    pub fn from_local(cmd: Command) -> (RemoteCommand, ReplyAdapter) {
        fn adapt<T: Send + 'static>(
            reply: crate::session::Reply<T>,
            map: impl FnOnce(RemoteReply) -> Option<T> + Send + 'static,
        ) -> ReplyAdapter {
            Box::new(move |r| {
                let result = match r {
                    Ok(RemoteReply::Failed { error }) => Err(error),
                    Ok(other) => map(other).ok_or_else(|| {
                        ProtocolError::new(
                            crate::protocol::ErrorCode::Internal,
                            "the owning server answered something unexpected",
                        )
                    }),
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            })
        }
        fn attached(r: RemoteReply) -> Option<Attached> {
            match r {
                RemoteReply::Attached {
                    member,
                    seq,
                    frames,
                } => Some(Attached {
                    member: member.into(),
                    seq,
                    frames: frames.into_iter().map(Into::into).collect(),
                }),
                _ => None,
            }
        }
        let none: ReplyAdapter = Box::new(|_| {});
        match cmd {
            Command::Join {
                member,
                secret,
                name,
                nonce,
                reply,
            } => (
                RemoteCommand::Join {
                    member: member.to_string(),
                    secret,
                    name,
                    nonce,
                },
                adapt(reply, attached),
            ),
            Command::Resume {
                member,
                secret,
                last_seq,
                reply,
            } => (
                RemoteCommand::Resume {
                    member: member.to_string(),
                    secret,
                    last_seq,
                },
                adapt(reply, attached),
            ),
            Command::Action {
                member,
                name,
                data,
                reply,
            } => (
                RemoteCommand::Action {
                    member: member.to_string(),
                    name,
                    data,
                },
                adapt(reply, |r| matches!(r, RemoteReply::Done).then_some(())),
            ),
            Command::Event { name, data, reply } => (
                RemoteCommand::Event { name, data },
                adapt(reply, |r| matches!(r, RemoteReply::Done).then_some(())),
            ),
            Command::Broadcast { name, data, reply } => (
                RemoteCommand::Broadcast { name, data },
                adapt(reply, |r| match r {
                    RemoteReply::Seq { seq } => Some(seq),
                    _ => None,
                }),
            ),
            Command::Summary { reply } => (
                RemoteCommand::Summary,
                adapt(reply, |r| match r {
                    RemoteReply::Summary { summary } => serde_json::from_value(summary).ok(),
                    _ => None,
                }),
            ),
            Command::Results { host, reply } => (
                RemoteCommand::Results {
                    host: host.map(|(m, s)| (m.to_string(), s)),
                },
                adapt(reply, |r| match r {
                    RemoteReply::Results { results } => Some(results),
                    _ => None,
                }),
            ),
            Command::Leave { member } => (
                RemoteCommand::Leave {
                    member: member.to_string(),
                },
                none,
            ),
            Command::Disconnected { member } => (
                RemoteCommand::Disconnected {
                    member: member.to_string(),
                },
                none,
            ),
            Command::Reattach { member } => (
                RemoteCommand::Reattach {
                    member: member.to_string(),
                },
                none,
            ),
            // Node-internal commands never cross the network.
            Command::Resync | Command::Relinquish => (RemoteCommand::Summary, none),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Audience;

    fn notice(frame: &str) -> Outgoing {
        Outgoing {
            seq: 0,
            audience: Audience::All,
            frame: frame.into(),
            revoke: false,
        }
    }

    #[test]
    fn batches_round_trip() {
        let mut m = notice(r#"{"type":"event"}"#);
        m.seq = 9;
        m.audience = Audience::Members(vec!["pa".into()]);
        let bytes = encode_batch("node-a", &[m.clone(), notice("{}")]);
        let (origin, back) = decode_batch(&bytes).unwrap();
        assert_eq!(origin, "node-a");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].seq, 9);
        assert_eq!(back[0].audience, m.audience);
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_none());
    }
}
