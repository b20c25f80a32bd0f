//! Taking a seat: `host`, `join` (a student's, under the wrong-code
//! guards, or a bot's, let in by an API key) and `resume`.

use super::*;

impl Connection {
    pub(super) async fn host(
        &mut self,
        game: &str,
        params: Json,
        key: Option<String>,
        names: NameMode,
    ) -> Result<(), ProtocolError> {
        if self.node.keys.any(KeyKind::Host)
            && self
                .node
                .keys
                .check(KeyKind::Host, key.as_deref())
                .is_none()
        {
            return Err(ProtocolError::new(
                ErrorCode::Unauthorized,
                "starting a game needs the host key (field `key`)",
            ));
        }
        let session: SessionId = new_session_id();
        let member: MemberId = new_member_id();
        let secret = new_secret();
        let slot = self.open_seat(&session, &member).await?;
        let result = self
            .node
            .create_session(
                session.clone(),
                game,
                params,
                names,
                member.clone(),
                secret,
                true,
                Some(self.client),
            )
            .await
            .map(|(code, attached)| {
                // The class is often behind the host's own address.
                self.node.join_guard.knows(self.client, &code);
                attached
            });
        self.finish_seat(session, member, slot, result).await
    }

    pub(super) async fn join(
        &mut self,
        code: &str,
        name: String,
        nonce: Option<String>,
        role: Role,
        key: Option<String>,
    ) -> Result<(), ProtocolError> {
        let bot = match role {
            Role::Player => None,
            Role::Bot => Some(self.bot_key(key.as_deref())?),
            Role::Host => {
                return Err(ProtocolError::new(
                    ErrorCode::BadFrame,
                    "a join's `role` is \"player\" or \"bot\"; a session's host starts it with a `host` frame",
                ));
            }
        };
        if nonce
            .as_ref()
            .is_some_and(|n| n.len() < MIN_NONCE || n.len() > 64)
        {
            return Err(ProtocolError::new(
                ErrorCode::BadFrame,
                format!("`nonce` must be {MIN_NONCE} to 64 characters (a fresh random string)"),
            ));
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(key_name) = bot {
            // A backend with an API key is not guessing codes (and many of
            // them may share one address): the guards are for the rest
            // (`bot_key` held its key to this connection's limit).
            return self.join_as_bot(&code, name, nonce, &key_name).await;
        }
        if let Err(wait) = self.join_limit.check() {
            return Err(ProtocolError::new(
                ErrorCode::RateLimited,
                "too many wrong codes; wait a few seconds and check the code",
            )
            .retry_after(wait));
        }
        let took = match self.node.join_guard.try_code(self.client, &code) {
            Ok(took) => took,
            Err(wait) => {
                Metrics::inc(&self.node.metrics.rate_limited_total);
                return Err(ProtocolError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many wrong codes from your network; try again in {} s",
                        wait.as_secs().max(1)
                    ),
                )
                .retry_after(wait));
            }
        };
        let Some(session) = self.find_code(&code).await? else {
            // The place `try_code` took stays taken.
            self.join_limit.failed();
            Metrics::inc(&self.node.metrics.join_failures_total);
            return Err(ProtocolError::new(
                ErrorCode::UnknownCode,
                format!(
                    "no game with code {code} is running; check the code on the teacher's screen"
                ),
            ));
        };
        self.node.join_guard.found(self.client, &code, took);
        self.join_session(session, name, nonce, role).await
    }

    /// A bot's join: the code is looked up without the guard, and a wrong
    /// one is `unknown_code` all the same.
    async fn join_as_bot(
        &mut self,
        code: &str,
        name: String,
        nonce: Option<String>,
        key_name: &str,
    ) -> Result<(), ProtocolError> {
        let Some(session) = self.find_code(code).await? else {
            return Err(ProtocolError::new(
                ErrorCode::UnknownCode,
                format!("no game with code {code} is running"),
            ));
        };
        tracing::info!(session = %session, key = %key_name, "bot joining");
        self.join_session(session, name, nonce, Role::Bot).await
    }

    /// The session a join code stands for, if one is live.
    async fn find_code(&self, code: &str) -> Result<Option<SessionId>, ProtocolError> {
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            self.node.lookup_code(code).await
        } else {
            Ok(None)
        }
    }

    /// The API key of a `join` with `role: "bot"`, by its name. A wrong key
    /// counts as a wrong code does on this connection.
    fn bot_key(&mut self, key: Option<&str>) -> Result<Arc<str>, ProtocolError> {
        if !self.node.keys.any(KeyKind::Api) {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "bots are off on this node: start recess with --api-key KEY (or --api-keys FILE) and send the key in `key`",
            ));
        }
        if let Err(wait) = self.join_limit.check() {
            return Err(ProtocolError::new(
                ErrorCode::RateLimited,
                "too many wrong keys; wait a few seconds",
            )
            .retry_after(wait));
        }
        self.node.keys.check(KeyKind::Api, key).ok_or_else(|| {
            self.join_limit.failed();
            ProtocolError::new(
                ErrorCode::Unauthorized,
                "joining as a bot needs an API key in `key`",
            )
        })
    }

    /// Takes a seat in a session whose code was found.
    async fn join_session(
        &mut self,
        session: SessionId,
        name: String,
        nonce: Option<String>,
        role: Role,
    ) -> Result<(), ProtocolError> {
        if self.seat(&session).is_some() {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "you are already in this game on this connection",
            ));
        }
        let member: MemberId = new_member_id();
        let secret = new_secret();
        let slot = self.open_seat(&session, &member).await?;
        let join = Request::Join {
            member: member.clone(),
            secret,
            name,
            nonce,
            role,
        };
        let result = Answer::attached(self.node.request(&session, join).await);
        match result {
            // A retried join: the seat exists under another member id.
            Ok(attached) if attached.member != member => {
                self.close_seat(&session, &member, slot).await;
                match welcome_token(&attached) {
                    // `u64::MAX`: this socket has no view yet, so a full one.
                    Some(token) => self.resume(&token, u64::MAX).await,
                    None => Err(ProtocolError::new(
                        ErrorCode::Internal,
                        "the seat could not be recovered; join with another name",
                    )),
                }
            }
            result => self.finish_seat(session, member, slot, result).await,
        }
    }

    pub(super) async fn resume(&mut self, token: &str, last_seq: u64) -> Result<(), ProtocolError> {
        let Some((session, member, secret)) = parse_token(token) else {
            return Err(ProtocolError::new(
                ErrorCode::BadToken,
                "that is not a Recess token",
            ));
        };
        let session: SessionId = session.into();
        let member: MemberId = member.into();
        let secret = secret.to_owned();
        if let Some(old) = self.take_seat(&session) {
            self.release_seat(old).await;
        }
        let slot = self.open_seat(&session, &member).await?;
        let resume = Request::Resume {
            member: member.clone(),
            secret,
            last_seq,
        };
        let result =
            Answer::attached(self.node.request(&session, resume).await).map_err(|e| match e.code {
                ErrorCode::UnknownSession => ProtocolError::new(
                    ErrorCode::BadToken,
                    "that session has ended or does not exist; join again with a code",
                ),
                _ => e,
            });
        self.finish_seat(session, member, slot, result).await
    }
}

/// The token in an `Attached`'s welcome frame.
fn welcome_token(attached: &Attached) -> Option<String> {
    let welcome: Json = serde_json::from_str(attached.frames.first()?.as_str()).ok()?;
    welcome.get("token")?.as_str().map(str::to_owned)
}
