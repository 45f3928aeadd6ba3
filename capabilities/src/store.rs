//! The store traits every backend implements, and the [`Change`] an update applies.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use portcullis_core::Error;

/// The future a store method returns: boxed, `Send`, borrowing the store and its arguments.
///
/// Boxing keeps [`CapabilityStore`], [`RevocationStore`] and [`SessionStore`]
/// object safe, so a service holds an `Arc<dyn CapabilityStore>` chosen by its
/// configuration.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Which capability names each user holds.
///
/// Names only: what a capability implies is decided elsewhere, from the
/// capability graph. Every list a store returns is sorted and free of
/// duplicates, and every update is applied atomically.
///
/// A backend that cannot answer (a server down, an I/O error) fails with an
/// error of kind [`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable)
/// — a 503 — never with an empty answer. A user or capability name that is
/// empty or holds control characters is refused with
/// [`ErrorKind::InvalidRequest`](portcullis_core::ErrorKind::InvalidRequest).
pub trait CapabilityStore: Send + Sync + Debug + 'static {
    /// The capabilities of `user`, or `None` for a user the store does not know.
    ///
    /// A known user may hold no capability (`Some(vec![])`).
    fn get<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Option<Vec<String>>>;

    /// Every known user with their capabilities.
    fn list(&self) -> StoreFuture<'_, BTreeMap<String, Vec<String>>>;

    /// Applies `change` to `user` if `check` accepts the user's capabilities
    /// as they are, as one atomic step, and returns them before and after.
    ///
    /// `check` sees the stored names right before the change (`None`: a user
    /// the store does not know) and refuses the change by returning an
    /// error, which `modify` returns unchanged, having written nothing. No
    /// other change to `user` lands between what `check` saw and the write,
    /// so a decision that depends on the prior state (a manager may withdraw
    /// only what it holds) cannot be bypassed by a concurrent change, and
    /// [`Modified::before`] is the true prior state. `check` may run more
    /// than once (a backend that retries on contention asks it again about
    /// the state it retries from); it must not block.
    ///
    /// [`Change::Add`] and [`Change::Set`] make the user known;
    /// [`Change::Remove`] never does (removing from an unknown user leaves
    /// the user unknown), and a user whose last capability is removed stays
    /// known with none.
    ///
    /// Besides the errors of `check`: kind `InvalidRequest` for an invalid
    /// user or capability name, kind `Unavailable` when the backend cannot
    /// answer or (Redis) the user's capabilities kept changing under
    /// repeated attempts.
    fn modify<'a>(
        &'a self,
        user: &'a str,
        change: Change,
        check: &'a ChangeCheck<'a>,
    ) -> StoreFuture<'a, Modified>;

    /// Applies `change` to `user` atomically, unconditionally, and returns the
    /// user's capabilities after it (an empty list for a user left unknown):
    /// [`modify`](Self::modify) with a check that accepts everything.
    fn update<'a>(&'a self, user: &'a str, change: Change) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let accept = |_: Option<&[String]>| Ok(());
            let modified = self.modify(user, change, &accept).await?;
            Ok(modified.after.unwrap_or_default())
        })
    }
}

/// The condition a [`CapabilityStore::modify`] checks against the user's
/// stored capability names right before the change (`None`: an unknown user);
/// `'a` bounds what the check borrows.
pub type ChangeCheck<'a> = dyn Fn(Option<&[String]>) -> Result<(), Error> + Send + Sync + 'a;

/// What a [`CapabilityStore::modify`] found and left: the user's stored
/// capability names right before the change and right after it (`None`: the
/// user is unknown). Both sorted and deduplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modified {
    /// The names before the change.
    pub before: Option<Vec<String>>,
    /// The names after the change.
    pub after: Option<Vec<String>>,
}

/// Which tokens were revoked before their expiry.
///
/// A revocation needs to outlive the token only: a store may drop an entry
/// once `expires_at_unix` has passed, after which [`is_revoked`](Self::is_revoked)
/// answers `false` (the token's own expiry refuses it from then on).
///
/// Failures are of kind [`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable):
/// a caller that cannot learn whether a token was revoked must refuse it.
pub trait RevocationStore: Send + Sync + Debug + 'static {
    /// Records that the token `token_id` (its `jti`) is revoked until `expires_at_unix`
    /// (seconds since the Unix epoch, the token's `exp`).
    fn revoke<'a>(&'a self, token_id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, ()>;

    /// Whether `token_id` is revoked.
    fn is_revoked<'a>(&'a self, token_id: &'a str) -> StoreFuture<'a, bool>;

    /// Whether `token_id` is revoked, answered without waiting by a store
    /// that holds its revocations in memory; `None` (the default) for a store
    /// that must be asked ([`is_revoked`](Self::is_revoked)).
    fn is_revoked_now(&self, token_id: &str) -> Option<bool> {
        let _ = token_id;
        None
    }

    /// Records `id` as used until `expires_at_unix` and answers whether this
    /// call was the first to do so: the check and the record are one atomic
    /// step, so of any number of concurrent calls for one id (from any
    /// replica sharing the store) exactly one answers `true`.
    ///
    /// Makes a one-time value (a login transaction, a nonce) single-use:
    /// consume it only on `true`. The id shares its namespace with
    /// [`revoke`](Self::revoke): afterwards [`is_revoked`](Self::is_revoked)
    /// answers `true` for it, and an id already revoked answers `false`.
    ///
    /// Once `expires_at_unix` has passed the entry no longer counts, and the
    /// next call answers `true` again (the value's own expiry refuses it
    /// from then on). An `expires_at_unix` that is not in the future records
    /// nothing and answers `false`: an expired value is never consumed.
    ///
    /// A backend may keep these records in memory only ([`FileStore`](crate::FileStore)
    /// does, so that a login never costs a write to disk): a restart then
    /// forgets the values used before it, and their own short expiry bounds
    /// how long they could be used again.
    ///
    /// An empty id or one holding control characters is refused with
    /// [`ErrorKind::InvalidRequest`](portcullis_core::ErrorKind::InvalidRequest).
    fn revoke_once<'a>(&'a self, id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, bool>;
}

/// Server-side login sessions: opaque bytes under an id, until an expiry.
///
/// Values are binary-safe and opaque to the store. An entry whose
/// `expires_at_unix` has passed is gone: [`get`](Self::get) answers `None`.
///
/// Failures are of kind [`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable)
/// (a 503): a caller that cannot read a session must not treat it as present.
/// [`put`](Self::put) refuses an empty id or one holding control characters
/// with [`ErrorKind::InvalidRequest`](portcullis_core::ErrorKind::InvalidRequest).
pub trait SessionStore: Send + Sync + Debug + 'static {
    /// Stores `data` under `id` until `expires_at_unix` (seconds since the
    /// Unix epoch), replacing what was there. An expiry that is not in the
    /// future removes the entry.
    fn put<'a>(&'a self, id: &'a str, data: &'a [u8], expires_at_unix: u64) -> StoreFuture<'a, ()>;

    /// The data stored under `id`; `None` when absent or expired.
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Removes `id` (no error when absent).
    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

    /// Stores `data` under `id` for `lease` (from now, by the store's
    /// clock) only if nothing live is stored there, and answers whether it
    /// did: the check and the write are one atomic step, so of any number
    /// of concurrent calls for one id (from any replica sharing the store)
    /// exactly one answers `true`.
    ///
    /// A short lock shared by replicas: the winner does the work and
    /// [`delete`](Self::delete)s the entry; the lease bounds how long a
    /// winner that died holds it. Redis: `SET ... NX PX`. A lease shorter
    /// than the store's resolution is rounded up (the memory store counts
    /// whole seconds).
    fn put_new<'a>(
        &'a self,
        id: &'a str,
        data: &'a [u8],
        lease: std::time::Duration,
    ) -> StoreFuture<'a, bool>;
}

/// A change to one user's capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Grants a capability (nothing changes if the user already holds it).
    Add(String),
    /// Withdraws a capability (nothing changes if the user does not hold it).
    Remove(String),
    /// Replaces all of the user's capabilities.
    Set(Vec<String>),
}

impl Change {
    /// The user's capabilities after this change, given those before it
    /// (`None`: an unknown user). `None` after means the user stays unknown.
    ///
    /// The result is sorted and deduplicated. Backends that hold whole lists
    /// (memory, file) use this, so that every backend agrees on the semantics.
    ///
    /// ```
    /// use portcullis_capabilities::Change;
    /// let before = Some(vec!["write".to_owned()]);
    /// assert_eq!(
    ///     Change::Add("read".into()).apply(before.clone()),
    ///     Some(vec!["read".to_owned(), "write".to_owned()])
    /// );
    /// assert_eq!(Change::Remove("write".into()).apply(before), Some(vec![]));
    /// assert_eq!(Change::Remove("write".into()).apply(None), None);
    /// ```
    pub fn apply(&self, before: Option<Vec<String>>) -> Option<Vec<String>> {
        match self {
            Change::Add(cap) => {
                let mut caps = before.unwrap_or_default();
                caps.push(cap.clone());
                Some(normalize(caps))
            }
            Change::Remove(cap) => before.map(|caps| {
                let mut caps = normalize(caps);
                caps.retain(|c| c != cap);
                caps
            }),
            Change::Set(caps) => Some(normalize(caps.clone())),
        }
    }

    /// Checks the capability names this change carries.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        match self {
            Change::Add(cap) | Change::Remove(cap) => validate_name("capability name", cap),
            Change::Set(caps) => caps
                .iter()
                .try_for_each(|cap| validate_name("capability name", cap)),
        }
    }
}

/// Sorts and deduplicates a list of names.
pub(crate) fn normalize(mut names: Vec<String>) -> Vec<String> {
    names.sort_unstable();
    names.dedup();
    names
}

/// Refuses an empty name or one holding control characters.
///
/// `what` says which name (`"user name"`, ...); the message never repeats the name.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid_request(format!("the {what} is empty")));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid_request(format!(
            "the {what} holds control characters"
        )));
    }
    Ok(())
}

/// Checks the arguments of [`CapabilityStore::update`].
pub(crate) fn validate_update(user: &str, change: &Change) -> Result<(), Error> {
    validate_name("user name", user)?;
    change.validate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::ErrorKind;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn changes_sort_and_deduplicate() {
        assert_eq!(
            Change::Set(v(&["b", "a", "b"])).apply(None),
            Some(v(&["a", "b"]))
        );
        assert_eq!(
            Change::Add("a".into()).apply(Some(v(&["c", "a"]))),
            Some(v(&["a", "c"]))
        );
        assert_eq!(Change::Add("a".into()).apply(None), Some(v(&["a"])));
        assert_eq!(
            Change::Remove("x".into()).apply(Some(v(&["b", "a"]))),
            Some(v(&["a", "b"]))
        );
        assert_eq!(Change::Set(vec![]).apply(Some(v(&["a"]))), Some(vec![]));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_update("alice@example.com", &Change::Add("read".into())).is_ok());
        let empty_user = validate_update("", &Change::Add("read".into())).unwrap_err();
        assert_eq!(empty_user.kind(), ErrorKind::InvalidRequest);
        let empty_cap = validate_update("a", &Change::Set(v(&["read", ""]))).unwrap_err();
        assert_eq!(empty_cap.kind(), ErrorKind::InvalidRequest);
        let control = validate_update("a\nb", &Change::Remove("read".into())).unwrap_err();
        assert_eq!(control.kind(), ErrorKind::InvalidRequest);
    }
}
