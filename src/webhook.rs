//! Webhooks out: the node's receivers (`--webhook URL`, `--webhook-secret`)
//! and the HTTP client that posts to them, for `session::hooks`.
//!
//! Every post is one `POST` of the webhook's JSON body with
//! `Content-Type: application/json`, `Recess-Webhook-Id: ID` and
//! `Recess-Signature: t=UNIX_SECONDS,v1=HEX`, where HEX is the HMAC-SHA256,
//! keyed with the receiver's secret, of `UNIX_SECONDS.BODY` (the scheme
//! Stripe uses: the time is signed too, so a receiver can refuse old
//! replays). Any 2xx answer is taken; anything else, or no answer within
//! [`POST_TIMEOUT`], is retried (docs/api.md, "Webhooks"). Receivers are
//! `http://` addresses (a receiver behind TLS is reached through a proxy
//! on its side or on this machine).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use sha2::Sha256;

use crate::metrics::Metrics;
use crate::session::hooks::{Hook, HookTransport, Refused};

/// How long one post may take, connecting included.
pub(crate) const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// One receiver.
struct Receiver {
    /// `host:port`, as dialled and as the `Host` header.
    authority: String,
    /// The path and query posted to.
    path: String,
    secret: Vec<u8>,
}

/// The node's receivers and how long to retry each.
pub(crate) struct Webhooks {
    receivers: Vec<Receiver>,
    give_up: Duration,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// The receivers the flags name, or `None` without any; an address
    /// that is not `http://HOST[:PORT][/PATH]`, or secrets that do not pair
    /// up with the addresses, are an error for the operator.
    pub(crate) fn from_flags(
        urls: &[String],
        secrets: &[String],
        give_up: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Webhooks>, String> {
        if urls.is_empty() {
            return match secrets.is_empty() {
                true => Ok(None),
                false => Err("--webhook-secret without --webhook".into()),
            };
        }
        if secrets.len() != 1 && secrets.len() != urls.len() {
            return Err(format!(
                "{} --webhook and {} --webhook-secret: give one secret for all, or one for each webhook in the same order",
                urls.len(),
                secrets.len()
            ));
        }
        let receivers = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let secret = &secrets[if secrets.len() == 1 { 0 } else { i }];
                if secret.is_empty() {
                    return Err(format!("the secret of webhook {url} is empty"));
                }
                let (authority, path) = parse_url(url)?;
                Ok(Receiver {
                    authority,
                    path,
                    secret: secret.as_bytes().to_vec(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Some(Webhooks {
            receivers,
            give_up,
            metrics,
        }))
    }

    async fn post_once(&self, receiver: &Receiver, hook: &Hook) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect(&receiver.authority)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", receiver.authority))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let request = hyper::Request::post(&receiver.path)
            .header(HOST, &receiver.authority)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("recess/", env!("CARGO_PKG_VERSION")))
            .header("recess-webhook-id", &*hook.id)
            .header(
                "recess-signature",
                signature(&receiver.secret, at, &hook.body),
            )
            .body(Full::new(Bytes::from(hook.body.as_bytes().to_vec())))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the answer to its end, so the receiver is not cut off.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}

impl HookTransport for Webhooks {
    fn receivers(&self) -> usize {
        self.receivers.len()
    }

    fn post<'a>(&'a self, to: usize, hook: &'a Hook) -> BoxFuture<'a, Result<(), Refused>> {
        Box::pin(async move {
            let receiver = self.receivers.get(to).ok_or_else(|| Refused {
                why: "no such receiver".into(),
            })?;
            let result =
                match tokio::time::timeout(POST_TIMEOUT, self.post_once(receiver, hook)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {} s", POST_TIMEOUT.as_secs())),
                };
            match result {
                Ok(()) => {
                    Metrics::inc(&self.metrics.webhooks_delivered_total);
                    Ok(())
                }
                Err(why) => {
                    Metrics::inc(&self.metrics.webhook_failures_total);
                    Err(Refused { why })
                }
            }
        })
    }

    fn give_up_after(&self) -> Duration {
        self.give_up
    }

    fn given_up(&self) {
        Metrics::inc(&self.metrics.webhooks_given_up_total);
    }
}

/// `http://HOST[:PORT][/PATH]` as the authority to dial (port 80 by
/// default) and the path to post to (`/` by default).
fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("webhook {url}: give an http:// address (for https, a TLS proxy in front of it)")
    })?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!(
            "webhook {url}: no host (or a user name, which is not supported)"
        ));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path))
}

/// `t=AT,v1=HEX`: the HMAC-SHA256 of `AT.BODY` keyed with `secret`.
pub(crate) fn signature(secret: &[u8], at: u64, body: &str) -> String {
    let at_text = at.to_string();
    let hex = hmac_hex(secret, &[at_text.as_bytes(), b".", body.as_bytes()]);
    format!("t={at},v1={hex}")
}

/// The HMAC-SHA256 of the parts, one after the other, in lower-case hex.
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    use std::fmt::Write;
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    for part in parts {
        mac.update(part);
    }
    let mut hex = String::with_capacity(64);
    for byte in mac.finalize().into_bytes() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_into_where_to_dial_and_what_to_post_to() {
        let ok = |u: &str| parse_url(u).unwrap();
        assert_eq!(
            ok("http://127.0.0.1:9000/hooks"),
            ("127.0.0.1:9000".into(), "/hooks".into())
        );
        assert_eq!(
            ok("http://grades.school"),
            ("grades.school:80".into(), "/".into())
        );
        assert_eq!(
            ok("http://[::1]/in?x=1"),
            ("[::1]:80".into(), "/in?x=1".into())
        );
        assert_eq!(ok("http://[::1]:81"), ("[::1]:81".into(), "/".into()));
        assert!(parse_url("https://grades.school/").is_err());
        assert!(parse_url("http:///x").is_err());
        assert!(parse_url("http://user@host/").is_err());
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_time_and_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", &[b"what do ya ", b"want for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = signature(b"Jefe", 1700000000, "{}");
        assert_eq!(
            sig,
            format!("t=1700000000,v1={}", hmac_hex(b"Jefe", &[b"1700000000.{}"]))
        );
    }

    #[test]
    fn secrets_pair_up_with_the_addresses() {
        let m = Arc::new(Metrics::default());
        let urls = ["http://a/".to_owned(), "http://b/".to_owned()];
        let min = Duration::from_secs(60);
        assert!(
            Webhooks::from_flags(&urls, &["s".into()], min, m.clone())
                .unwrap()
                .is_some()
        );
        assert!(Webhooks::from_flags(&urls, &["s".into(), "t".into()], min, m.clone()).is_ok());
        assert!(Webhooks::from_flags(&urls, &[], min, m.clone()).is_err());
        assert!(Webhooks::from_flags(&[], &["s".into()], min, m.clone()).is_err());
        assert!(Webhooks::from_flags(&[], &[], min, m).unwrap().is_none());
    }
}
