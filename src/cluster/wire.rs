//! What nodes say to each other over Redis: commands forwarded to a session's
//! owner, their replies, and batches of session messages.

use serde::{Deserialize, Serialize};

use crate::session::record::{decode_message, encode_message};
use crate::session::{Outcome, Outgoing, Request};

/// A request on the owner's channel (`id` 0: no answer wanted).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Forward {
    pub id: u64,
    pub from: String,
    pub session: String,
    pub request: Request,
}

/// An answer on the asking node's channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub reply_to: u64,
    pub outcome: Outcome,
}

/// Either, as read from a node channel.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum NodeMessage {
    Forward(Forward),
    Response(Response),
}

/// A batch of session messages on a session channel:
/// `[origin len:1][origin][count:4]([len:4][message])*`.
pub(crate) fn encode_batch(origin: &str, messages: &[Outgoing]) -> Vec<u8> {
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
pub(crate) fn decode_batch(bytes: &[u8]) -> Option<(String, Vec<Outgoing>)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Role;
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
    fn a_forwarded_request_and_its_answer_cross_the_network_unchanged() {
        let forward = Forward {
            id: 7,
            from: "b-1".into(),
            session: "s1".into(),
            request: Request::Join {
                member: "p1".into(),
                secret: "k".into(),
                name: "Ana".into(),
                nonce: None,
                role: Role::Bot,
            },
        };
        let bytes = serde_json::to_vec(&forward).unwrap();
        let Ok(NodeMessage::Forward(back)) = serde_json::from_slice(&bytes) else {
            panic!("not read back as a request");
        };
        assert!(matches!(
            back.request,
            Request::Join { ref name, role: Role::Bot, .. } if name == "Ana"
        ));
        let answer = Response {
            reply_to: 7,
            outcome: Ok(crate::session::Answer::Attached(crate::session::Attached {
                member: "p1".into(),
                seq: 3,
                frames: vec!["{}".into()],
            })),
        };
        let bytes = serde_json::to_vec(&answer).unwrap();
        let Ok(NodeMessage::Response(back)) = serde_json::from_slice(&bytes) else {
            panic!("not read back as an answer");
        };
        let attached = crate::session::Answer::attached(back.outcome).unwrap();
        assert_eq!((attached.seq, attached.frames[0].as_str()), (3, "{}"));
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
