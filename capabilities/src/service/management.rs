//! easy-oauth's management operations on [`Capabilities`]: request bodies,
//! the grant rules, and the JSON answers of `list`, `add`, `remove` and
//! `set`.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OneBody {
    email: Option<String>,
    capability: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    email: Option<String>,
    capabilities: Option<Vec<String>>,
}

pub(super) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_request(format!("the body is not the expected JSON: {e}")))
}

fn require_email(email: Option<String>) -> Result<String, Error> {
    match email {
        Some(e) if !e.is_empty() => Ok(e),
        _ => Err(Error::invalid_request("`email` is required")),
    }
}

impl Capabilities {
    /// Requires `user_management` of `caller`; returns the caller's key and capabilities.
    pub(super) async fn manager<'a>(
        &self,
        caller: Option<&'a Authenticated>,
    ) -> Result<(&'a str, CapSet), Error> {
        let Some(um) = self.inner.graph.user_management() else {
            return Err(Error::forbidden(
                "capability management is not enabled: the graph declares no `user_management`",
            ));
        };
        let set = self.of(caller).await?;
        let Some(caller) = caller else {
            return Err(Error::missing_credentials());
        };
        if !set.contains(um) {
            return Err(Error::insufficient_scope("user_management"));
        }
        Ok((user_key(&caller.principal), set))
    }

    /// Refuses undeclared names (400) and names `held` does not cover (403).
    pub(super) fn check_grantable(&self, held: &CapSet, names: &[String]) -> Result<(), Error> {
        let graph = &self.inner.graph;
        graph.resolve_declared(names)?;
        for name in names {
            let id = graph
                .id(name)
                .ok_or_else(|| Error::invalid_request(format!("unknown capability `{name}`")))?;
            if !graph.can_grant(held, graph.closure(id)) {
                return Err(Error::forbidden(format!(
                    "you cannot grant or withdraw `{name}`: you do not hold it"
                )));
            }
        }
        Ok(())
    }

    /// easy-oauth's answer: `capabilities` are the stored names. A user
    /// with capabilities pinned by `user_overrides` also gets
    /// `user_overrides` (the pinned names, which no management change
    /// touches) and `effective` (stored and pinned names together: what is
    /// in force besides the defaults).
    fn answer(&self, email: &str, caps: &[String]) -> Reply {
        let body = match self.inner.graph.pinned(email) {
            None => json!({"status": "ok", "email": email, "capabilities": caps}),
            Some((pinned, _)) => {
                let mut effective: Vec<&String> = caps.iter().chain(pinned).collect();
                effective.sort_unstable();
                effective.dedup();
                json!({
                    "status": "ok",
                    "email": email,
                    "capabilities": caps,
                    "user_overrides": pinned,
                    "effective": effective,
                })
            }
        };
        Reply::json_no_store(200, &body)
    }

    /// `GET /manage_capabilities/list?email=`: the stored capabilities of
    /// `email` (default: the caller), with those pinned by
    /// `user_overrides` when there are any. Another user's need
    /// `user_management`.
    pub async fn list(
        &self,
        caller: Option<&Authenticated>,
        email: Option<&str>,
    ) -> Result<Reply, Error> {
        let me = caller.ok_or_else(Error::missing_credentials)?;
        let own = user_key(&me.principal);
        let email = match email {
            Some(e) if !e.is_empty() && e != own => {
                self.manager(caller).await?;
                e
            }
            _ => {
                // Refuses a token this service no longer honours.
                self.of(caller).await?;
                own
            }
        };
        let caps = self.inner.store.get(email).await?.unwrap_or_default();
        Ok(self.answer(email, &caps))
    }

    /// `GET /manage_capabilities/list_user?email=`: easy-oauth 0.0.5+'s name
    /// for [`list`](Self::list), with the same answer and rules.
    pub async fn list_user(
        &self,
        caller: Option<&Authenticated>,
        email: Option<&str>,
    ) -> Result<Reply, Error> {
        self.list(caller, email).await
    }

    /// `GET /manage_capabilities/list_all` (managers only): every stored
    /// user's capabilities and the graph, as easy-oauth 0.0.5 to 0.0.9
    /// answer their full listing: `{"status": "ok", "users": {email:
    /// [names]}, "graph": {name: [implied]}}`, the graph with `admin`
    /// expanded to every capability when `auto_admin` adds it.
    ///
    /// (easy-oauth's own full listing is `GET /manage_capabilities/list`
    /// without `email`; portcullis keeps that shape for the README's
    /// meaning, the caller's own capabilities.)
    pub async fn list_all(&self, caller: Option<&Authenticated>) -> Result<Reply, Error> {
        self.manager(caller).await?;
        let users = self.inner.store.list().await?;
        Ok(Reply::json_no_store(
            200,
            &json!({"status": "ok", "users": users, "graph": self.inner.graph_document}),
        ))
    }

    /// Applies `change` to `email` if `check` accepts the stored names right
    /// before it, atomically, and logs the change with the true before and after.
    async fn apply(
        &self,
        who: &str,
        email: &str,
        change: Change,
        op: &'static str,
        check: &ChangeCheck<'_>,
    ) -> Result<Reply, Error> {
        let modified = self.inner.store.modify(email, change, check).await?;
        let before = modified.before.unwrap_or_default();
        let after = modified.after.unwrap_or_default();
        tracing::info!(
            who = %who,
            whom = %email,
            operation = op,
            before = ?before,
            after = ?after,
            "capabilities changed"
        );
        Ok(self.answer(email, &after))
    }

    /// `POST /manage_capabilities/add` with `{"email", "capability"}`.
    pub async fn add(&self, caller: Option<&Authenticated>, body: &[u8]) -> Result<Reply, Error> {
        self.change_one(caller, body, Change::Add, "add").await
    }

    /// `POST /manage_capabilities/remove` with `{"email", "capability"}`.
    pub async fn remove(
        &self,
        caller: Option<&Authenticated>,
        body: &[u8],
    ) -> Result<Reply, Error> {
        self.change_one(caller, body, Change::Remove, "remove")
            .await
    }

    /// `add` and `remove`: one capability, which the manager must hold.
    async fn change_one(
        &self,
        caller: Option<&Authenticated>,
        body: &[u8],
        change: fn(String) -> Change,
        operation: &'static str,
    ) -> Result<Reply, Error> {
        let (who, held) = self.manager(caller).await?;
        let body: OneBody = parse_body(body)?;
        let email = require_email(body.email)?;
        let cap = body
            .capability
            .ok_or_else(|| Error::invalid_request("`capability` is required"))?;
        self.check_grantable(&held, std::slice::from_ref(&cap))?;
        // What is granted or withdrawn does not depend on the prior state.
        let accept = |_: Option<&[String]>| Ok(());
        self.apply(who, &email, change(cap), operation, &accept)
            .await
    }

    /// `POST /manage_capabilities/set` with `{"email", "capabilities": [...]}`.
    ///
    /// The manager must hold every capability given and every one withdrawn.
    /// Withdrawals are checked against the user's capabilities in the same
    /// atomic step as the write ([`CapabilityStore::modify`]): a change
    /// landing concurrently cannot make the manager withdraw what it does not
    /// hold, and the audit event's `before` is the true prior state.
    pub async fn set(&self, caller: Option<&Authenticated>, body: &[u8]) -> Result<Reply, Error> {
        let (who, held) = self.manager(caller).await?;
        let body: SetBody = parse_body(body)?;
        let email = require_email(body.email)?;
        let caps = body
            .capabilities
            .ok_or_else(|| Error::invalid_request("`capabilities` is required"))?;
        self.check_grantable(&held, &caps)?;
        // What is withdrawn is decided against the names the change replaces,
        // in the same atomic step as the write.
        let withdrawals = |before: Option<&[String]>| {
            let withdrawn: Vec<String> = before
                .unwrap_or_default()
                .iter()
                .filter(|c| !caps.contains(c) && self.inner.graph.has(c))
                .cloned()
                .collect();
            self.check_grantable(&held, &withdrawn)
        };
        self.apply(who, &email, Change::Set(caps.clone()), "set", &withdrawals)
            .await
    }

    /// Every stored user with their capabilities (for diagnostics).
    pub async fn stored(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        self.inner.store.list().await
    }
}
