//! Device logins (RFC 8628) for command-line tools: the relying party's
//! side of `/login?headless=true&device=true` and of its `token_url`.

use std::time::Duration;

use serde_json::json;

use super::{RelyingParty, login_failed, random_token};
use crate::headless::{Device, Pending, device_seal_name, key, poll_lock, secret_hash};
use crate::provider::{DevicePoll, OfflineRequest, Tokens};
use crate::session::SessionData;
use portcullis_core::{Error, Reply};

/// `202 {"status": "pending", "interval"}`: call the `token_url` again,
/// after `interval` seconds at the earliest.
pub(super) fn device_pending(interval: u64) -> Reply {
    Reply::json_no_store(202, &json!({"status": "pending", "interval": interval})).private()
}

impl RelyingParty {
    /// `GET {prefix}/login?headless=true&device=true`: when the provider
    /// advertises a `device_authorization_endpoint`, starts a device
    /// authorization there and answers `{"verification_uri",
    /// "verification_uri_complete" (when the provider gives one),
    /// "user_code", "token_url", "expires_at", "interval"}`; otherwise the
    /// ordinary headless login's answer (`login_url`, `token_url`,
    /// `expires_at`), so a tool can handle both.
    pub(super) async fn device_start(&self, offline: bool) -> Reply {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Reply::error(&e, self.realm()).private(),
        };
        if !provider.device_flow() {
            return self.headless_start().await;
        }
        let config = &self.inner.config;
        let mut scopes: Vec<String> = config
            .client_kwargs
            .scope
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        if offline
            && provider.offline_request() == OfflineRequest::Scope
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".to_owned());
        }
        let start = match provider.device_authorization(&scopes).await {
            Ok(s) => s,
            Err(e) => return Reply::error(&e, self.realm()).private(),
        };
        let (id, secret) = match (random_token(16), random_token(32)) {
            (Ok(i), Ok(s)) => (i, s),
            _ => {
                let e = Error::unavailable("the system random generator failed");
                return Reply::error(&e, self.realm()).private();
            }
        };
        let sealed = match self
            .inner
            .codec
            .sealer
            .seal(&device_seal_name(&id), start.device_code.as_bytes())
        {
            Ok(s) => s,
            Err(e) => return Reply::error(&e, self.realm()).private(),
        };
        let now = self.inner.clock.now_secs();
        let expires_at =
            now.saturating_add(start.expires_in.min(config.session.login_timeout_secs));
        let pending = Pending {
            secret_hash: secret_hash(&secret),
            expires_at,
            token: None,
            device: Some(Device {
                device_code: sealed,
                interval: start.interval,
                next_poll_at: now.saturating_add(start.interval),
            }),
        };
        let stored = self
            .inner
            .codec
            .store
            .put(&key(&id), &pending.to_bytes(), expires_at)
            .await;
        if let Err(e) = stored {
            return Reply::error(&e, self.realm()).private();
        }
        let base = format!("{}{}", config.base_url.trim_end_matches('/'), config.prefix);
        let mut body = json!({
            "verification_uri": start.verification_uri,
            "user_code": start.user_code,
            "token_url": format!("{base}/headless_token?id={id}&secret={secret}"),
            "expires_at": expires_at,
            "interval": start.interval,
        });
        if let Some(complete) = &start.verification_uri_complete {
            body["verification_uri_complete"] = json!(complete);
        }
        Reply::json_no_store(200, &body).private()
    }

    /// One step of a device login's `token_url`: when the interval has
    /// passed and this replica takes the poll lock, polls the provider
    /// once. Answers the reply to give now, or `None` to go on waiting
    /// (the user token, once recorded, is collected by the caller's loop).
    pub(super) async fn device_step(&self, id: &str, device: &Device) -> Option<Reply> {
        let now = self.inner.clock.now_secs();
        if now < device.next_poll_at {
            return None;
        }
        let store = &self.inner.codec.store;
        let lease = Duration::from_secs(device.interval.max(1));
        match store.put_new(&poll_lock(id), b"", lease).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Reply::error(&e, self.realm()).private()),
        }
        let reply = self.device_poll(id, now).await;
        if let Err(e) = store.delete(&poll_lock(id)).await {
            tracing::warn!(error = %e, "a device login's poll lock could not be released; it lapses by itself");
        }
        reply
    }

    /// Polls the provider for device login `id`, holding its poll lock.
    async fn device_poll(&self, id: &str, now: u64) -> Option<Reply> {
        let store = &self.inner.codec.store;
        // Read again under the lock: another replica may have polled.
        let pending = match self.headless_pending(id).await {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => return Some(Reply::error(&e, self.realm()).private()),
        };
        if pending.token.is_some() {
            return None;
        }
        let device = pending.device.clone()?;
        if now < device.next_poll_at {
            return None;
        }
        let Some(device_code) = self
            .inner
            .codec
            .sealer
            .open(&device_seal_name(id), &device.device_code)
            .and_then(|b| String::from_utf8(b).ok())
        else {
            // Sealed under another secret key: the login cannot go on.
            let _ = store.delete(&key(id)).await;
            return Some(
                login_failed(400, "this device login can no longer complete; start again")
                    .private(),
            );
        };
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Some(Reply::error(&e, self.realm()).private()),
        };
        let outcome = provider.poll_device(&device_code).await;
        let mut interval = device.interval;
        let answer = match outcome {
            DevicePoll::Tokens(tokens) => {
                return match self.device_complete(id, &tokens, now).await {
                    Ok(()) => None,
                    Err(reply) => {
                        let _ = store.delete(&key(id)).await;
                        Some(reply)
                    }
                };
            }
            DevicePoll::Refused(code) => {
                if let Err(e) = store.delete(&key(id)).await {
                    tracing::warn!(error = %e, "an ended device login could not be deleted; it expires by itself");
                }
                let code = super::error_code(&code);
                return Some(
                    login_failed(400, format!("the provider answered `{code}`")).private(),
                );
            }
            DevicePoll::Pending => device_pending(interval),
            DevicePoll::SlowDown => {
                interval = interval.saturating_add(5);
                device_pending(interval)
            }
            // The next poll waits for the interval too: an outage is not
            // hammered by every waiting call.
            DevicePoll::Failed(e) => Reply::error(&e, self.realm()).private(),
        };
        let mut pending = pending;
        pending.device = Some(Device {
            interval,
            next_poll_at: now.saturating_add(interval),
            ..device
        });
        if let Err(e) = store
            .put(&key(id), &pending.to_bytes(), pending.expires_at)
            .await
        {
            return Some(Reply::error(&e, self.realm()).private());
        }
        Some(answer)
    }

    /// The provider granted device login `id`: its ID token is checked as
    /// a browser login's (but for the nonce, which the device flow does not
    /// have) and the user's token recorded for the `token_url`.
    async fn device_complete(&self, id: &str, tokens: &Tokens, now: u64) -> Result<(), Reply> {
        let provider = self
            .provider()
            .await
            .map_err(|e| Reply::error(&e, self.realm()).private())?;
        let claims = self
            .check_id_token(tokens, None, &provider)
            .await
            .map_err(Reply::private)?;
        let mut session = SessionData {
            sid: random_token(32).map_err(|e| Reply::error(&e, self.realm()).private())?,
            iss: provider.issuer().to_owned(),
            claims,
            access_token: Some(tokens.access_token.clone()),
            access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
            refresh_token: tokens.refresh_token.clone(),
            id_token: tokens.id_token.clone(),
            expires_at: now.saturating_add(self.inner.config.session.max_age_secs),
            login: None,
            checked_at: None,
        };
        self.bind_login(&mut session, now)
            .await
            .map_err(|e| Reply::error(&e, self.realm()).private())?;
        let who = session
            .claims
            .get("email")
            .and_then(|v| v.as_str())
            .unwrap_or("(no email)");
        tracing::info!(user = %who, "logged in on a device");
        self.headless_complete(id, &session)
            .await
            .map_err(|e| Reply::error(&e, self.realm()).private())
    }
}
