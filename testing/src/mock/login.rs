//! What the login flows remember: the registered redirect URIs, who logs in
//! next, queued errors, authorization codes and refresh-token families.
//!
//! Everything here is plain bookkeeping behind one mutex in
//! [`State`](super::state::State); the HTTP handlers decide what to answer.

use std::collections::{HashMap, VecDeque};

use aws_lc_rs::digest;
use serde_json::{Map, Value};

use super::state::random_b64;

/// The email of the user who logs in when nothing else says who.
pub(crate) const DEFAULT_EMAIL: &str = "test@example.com";

/// Claims of ID tokens that a user's extra claims cannot replace: the ones
/// that say who issued the token, to whom, about whom and when.
pub(crate) const PROTECTED_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "at_hash",
    "auth_time",
];

/// A user that logs in through `/authorize`; see
/// [`MockProvider::queue_user_with`](crate::MockProvider::queue_user_with).
///
/// ```
/// use portcullis_testing::MockUser;
/// let user = MockUser::new("dana@example.com")
///     .with_claim("groups", serde_json::json!(["admins"]));
/// assert_eq!(user.sub(), MockUser::subject_for("dana@example.com"));
/// assert_eq!(user.clone().with_subject("dana").sub(), "dana");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MockUser {
    /// The `email` claim (with `email_verified: true`).
    pub email: String,
    /// The `sub` claim; `None` derives it from the email with
    /// [`subject_for`](Self::subject_for).
    pub subject: Option<String>,
    /// Extra claims for the user's ID tokens and userinfo answers. They may
    /// replace `email_verified` or profile claims, but not `iss`, `sub`,
    /// `aud`, `azp`, `exp`, `iat`, `nbf`, `jti`, `nonce`, `at_hash` or
    /// `auth_time`, which are left out.
    pub claims: Map<String, Value>,
}

impl MockUser {
    /// A user with this email, a derived subject and no extra claims.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            subject: None,
            claims: Map::new(),
        }
    }

    /// Sets [`subject`](Self::subject).
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Adds an extra claim; see [`claims`](Self::claims).
    #[must_use]
    pub fn with_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    /// The subject the provider gives an email when none is set: `"user-"`
    /// followed by the first 16 hex digits of the SHA-256 of the email's
    /// bytes. The same email always gets the same subject.
    ///
    /// ```
    /// use portcullis_testing::MockUser;
    /// let sub = MockUser::subject_for("test@example.com");
    /// assert!(sub.starts_with("user-"));
    /// assert_eq!(sub.len(), 21);
    /// assert_ne!(sub, MockUser::subject_for("Test@example.com"));
    /// ```
    pub fn subject_for(email: &str) -> String {
        let hash = digest::digest(&digest::SHA256, email.as_bytes());
        let hex: String = hash.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("user-{hex}")
    }

    /// The `sub` this user gets: [`subject`](Self::subject), or the one
    /// derived from the email.
    pub fn sub(&self) -> String {
        self.subject
            .clone()
            .unwrap_or_else(|| Self::subject_for(&self.email))
    }

    /// The extra claims that may go into tokens and userinfo answers.
    pub(crate) fn extra_claims(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.claims
            .iter()
            .filter(|(name, _)| !PROTECTED_CLAIMS.contains(&name.as_str()))
    }
}

/// An OAuth error to answer instead of the normal result.
#[derive(Debug, Clone)]
pub(crate) struct QueuedError {
    pub(crate) error: String,
    pub(crate) description: String,
}

/// How the ID token of a coming code exchange differs from the provider's own;
/// see [`MockProvider::queue_id_token`](crate::MockProvider::queue_id_token).
#[derive(Debug, Clone)]
pub(crate) enum IdTokenOverride {
    /// Exactly this token instead of the provider's.
    Raw(String),
    /// The provider's token with these claims set, or removed where `null`.
    Claims(Map<String, Value>),
}

/// What one login granted; shared by its code and the tokens issued from it.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) user: MockUser,
    pub(crate) subject: String,
    /// Space-separated, as requested.
    pub(crate) scope: String,
    pub(crate) auth_time: u64,
    /// Whether the login asked for a refresh token (`offline_access`, or
    /// `access_type=offline` where that scope is not supported).
    pub(crate) offline: bool,
}

/// An authorization code and what it is bound to.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) grant: Grant,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    /// Invalid from this second of the provider's clock on.
    pub(crate) expires_at: u64,
}

#[derive(Debug)]
struct CodeEntry {
    code: Code,
    /// Set once someone tried to redeem it.
    used: bool,
    /// The family of the tokens it was redeemed for.
    family: Option<usize>,
}

/// Every token descending from one redeemed code.
#[derive(Debug)]
struct Family {
    grant: Grant,
    revoked: bool,
}

#[derive(Debug)]
struct RefreshEntry {
    family: usize,
    used: bool,
}

/// Why a code cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeProblem {
    Unknown,
    Expired,
    /// Redeemed before; the tokens issued from it are now revoked.
    Replayed,
}

/// Why a refresh token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshProblem {
    Unknown,
    Revoked,
    /// Used before; its whole family is now revoked.
    Replayed,
}

/// The login flows' memory.
#[derive(Debug, Default)]
pub(crate) struct LoginState {
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    users: VecDeque<MockUser>,
    email: Option<String>,
    authorize_errors: VecDeque<QueuedError>,
    token_errors: VecDeque<QueuedError>,
    refresh_subject: Option<String>,
    id_token_overrides: VecDeque<IdTokenOverride>,
    /// The body of the last successful token answer.
    last_token_response: Option<Value>,
    codes: HashMap<String, CodeEntry>,
    families: Vec<Family>,
    refresh_tokens: HashMap<String, RefreshEntry>,
    /// The family of each access token issued by `/token`, by `jti`.
    access_tokens: HashMap<String, usize>,
    /// The last user who logged in with each subject, for userinfo.
    known_users: HashMap<String, MockUser>,
    refreshes: usize,
    logouts: usize,
    revocations: usize,
    devices: super::device::Devices,
}

impl LoginState {
    pub(crate) fn new(redirect_uris: Vec<String>, post_logout_redirect_uris: Vec<String>) -> Self {
        Self {
            redirect_uris,
            post_logout_redirect_uris,
            ..Self::default()
        }
    }

    /// The device authorizations (RFC 8628).
    pub(crate) fn devices(&mut self) -> &mut super::device::Devices {
        &mut self.devices
    }

    pub(crate) fn register_redirect_uri(&mut self, uri: &str) {
        if !self.redirect_uris.iter().any(|u| u == uri) {
            self.redirect_uris.push(uri.to_owned());
        }
    }

    pub(crate) fn register_post_logout_redirect_uri(&mut self, uri: &str) {
        if !self.post_logout_redirect_uris.iter().any(|u| u == uri) {
            self.post_logout_redirect_uris.push(uri.to_owned());
        }
    }

    pub(crate) fn is_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }

    pub(crate) fn is_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }

    pub(crate) fn queue_user(&mut self, user: MockUser) {
        self.users.push_back(user);
    }

    pub(crate) fn set_email(&mut self, email: String) {
        self.email = Some(email);
    }

    pub(crate) fn queue_authorize_error(&mut self, error: QueuedError) {
        self.authorize_errors.push_back(error);
    }

    pub(crate) fn next_authorize_error(&mut self) -> Option<QueuedError> {
        self.authorize_errors.pop_front()
    }

    pub(crate) fn queue_token_error(&mut self, error: QueuedError) {
        self.token_errors.push_back(error);
    }

    pub(crate) fn next_token_error(&mut self) -> Option<QueuedError> {
        self.token_errors.pop_front()
    }

    pub(crate) fn set_refresh_subject(&mut self, subject: Option<String>) {
        self.refresh_subject = subject;
    }

    pub(crate) fn refresh_subject(&self) -> Option<&str> {
        self.refresh_subject.as_deref()
    }

    pub(crate) fn queue_id_token_override(&mut self, change: IdTokenOverride) {
        self.id_token_overrides.push_back(change);
    }

    pub(crate) fn next_id_token_override(&mut self) -> Option<IdTokenOverride> {
        self.id_token_overrides.pop_front()
    }

    pub(crate) fn record_token_response(&mut self, body: &Value) {
        self.last_token_response = Some(body.clone());
    }

    pub(crate) fn last_token_response(&self) -> Option<&Value> {
        self.last_token_response.as_ref()
    }

    /// Who logs in now: the next queued user, else the login hint, else the
    /// provider-wide email, else [`DEFAULT_EMAIL`]. Remembered for userinfo.
    pub(crate) fn next_user(&mut self, login_hint: Option<&str>) -> MockUser {
        let user = self.users.pop_front().unwrap_or_else(|| {
            let email = login_hint
                .or(self.email.as_deref())
                .unwrap_or(DEFAULT_EMAIL);
            MockUser::new(email)
        });
        self.known_users.insert(user.sub(), user.clone());
        user
    }

    pub(crate) fn known_user(&self, subject: &str) -> Option<&MockUser> {
        self.known_users.get(subject)
    }

    /// Stores a new code and returns it.
    pub(crate) fn issue_code(&mut self, code: Code) -> String {
        let value = random_b64(32);
        self.codes.insert(
            value.clone(),
            CodeEntry {
                code,
                used: false,
                family: None,
            },
        );
        value
    }

    /// Marks the code used and returns what it is bound to. A code used
    /// before revokes the family of the tokens it was redeemed for.
    pub(crate) fn take_code(&mut self, value: &str, now: u64) -> Result<Code, CodeProblem> {
        let entry = self.codes.get_mut(value).ok_or(CodeProblem::Unknown)?;
        if entry.used {
            if let Some(family) = entry.family {
                self.families[family].revoked = true;
            }
            return Err(CodeProblem::Replayed);
        }
        entry.used = true;
        if now >= entry.code.expires_at {
            return Err(CodeProblem::Expired);
        }
        Ok(entry.code.clone())
    }

    /// Starts the family of tokens a code was redeemed for.
    pub(crate) fn start_family(&mut self, code: &str, grant: Grant) -> usize {
        let family = self.families.len();
        self.families.push(Family {
            grant,
            revoked: false,
        });
        if let Some(entry) = self.codes.get_mut(code) {
            entry.family = Some(family);
        }
        family
    }

    /// A new refresh token in `family`.
    pub(crate) fn issue_refresh_token(&mut self, family: usize) -> String {
        let value = random_b64(32);
        self.refresh_tokens.insert(
            value.clone(),
            RefreshEntry {
                family,
                used: false,
            },
        );
        value
    }

    /// The family of a refresh token and what it was granted, without using it.
    pub(crate) fn peek_refresh_token(
        &mut self,
        value: &str,
    ) -> Result<(usize, Grant), RefreshProblem> {
        let entry = self
            .refresh_tokens
            .get(value)
            .ok_or(RefreshProblem::Unknown)?;
        let family = &mut self.families[entry.family];
        if entry.used {
            family.revoked = true;
            return Err(RefreshProblem::Replayed);
        }
        if family.revoked {
            return Err(RefreshProblem::Revoked);
        }
        Ok((entry.family, family.grant.clone()))
    }

    /// Marks a refresh token used (it was checked with `peek_refresh_token`).
    pub(crate) fn use_refresh_token(&mut self, value: &str) {
        if let Some(entry) = self.refresh_tokens.get_mut(value) {
            entry.used = true;
        }
        self.refreshes += 1;
    }

    /// Records that the access token with this `jti` belongs to `family`.
    pub(crate) fn record_access_token(&mut self, jti: String, family: usize) {
        self.access_tokens.insert(jti, family);
    }

    /// Whether the access token with this `jti` was revoked with its family.
    pub(crate) fn access_token_revoked(&self, jti: &str) -> bool {
        self.access_tokens
            .get(jti)
            .is_some_and(|&family| self.families[family].revoked)
    }

    /// RFC 7009: revokes the family of a refresh token; answers whether the
    /// token was known.
    pub(crate) fn revoke_refresh_token(&mut self, value: &str) -> bool {
        let Some(entry) = self.refresh_tokens.get(value) else {
            return false;
        };
        self.families[entry.family].revoked = true;
        self.revocations += 1;
        true
    }

    /// Disables the user with this email: every token family of theirs is
    /// revoked (their refresh tokens answer `invalid_grant`); answers how
    /// many families were live.
    pub(crate) fn disable_user(&mut self, email: &str) -> usize {
        let mut disabled = 0;
        for family in &mut self.families {
            if family.grant.user.email == email && !family.revoked {
                family.revoked = true;
                disabled += 1;
            }
        }
        disabled
    }

    /// How many known tokens the revocation endpoint revoked.
    pub(crate) fn revocation_count(&self) -> usize {
        self.revocations
    }

    pub(crate) fn refresh_count(&self) -> usize {
        self.refreshes
    }

    pub(crate) fn record_logout(&mut self) {
        self.logouts += 1;
    }

    pub(crate) fn logout_count(&self) -> usize {
        self.logouts
    }
}
