//! [`Routes`]: easy-oauth's login and management routes as data, and the
//! one place their requests are answered. An adapter mounts each
//! [`Route`] with its framework's router and, per request, copies the
//! request into [`Routes::dispatch`] and the [`Reply`] out.

use std::sync::Arc;

use portcullis_capabilities::Capabilities;
use portcullis_core::{Authenticated, Error, HeaderLookup, Reply};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;

/// The HTTP method of a [`Route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`: the request body is read, up to
    /// [`MAX_BODY_BYTES`](portcullis_capabilities::MAX_BODY_BYTES).
    Post,
}

/// What a [`Route`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteKind {
    /// `GET /login`: `RelyingParty::login`.
    Login,
    /// `GET /auth`: `RelyingParty::callback`.
    Callback,
    /// `GET /logout`: `RelyingParty::logout`.
    Logout,
    /// `POST /logout`: `RelyingParty::logout_post`.
    LogoutPost,
    /// `GET /token` of the login routes: `RelyingParty::token`.
    Token,
    /// `GET /token?user=bot@service` of the management routes:
    /// [`Capabilities::issue_service_token`].
    ServiceToken,
    /// `GET /manage_capabilities/list?email=`: [`Capabilities::list`].
    ListCapabilities,
    /// `GET /manage_capabilities/list_user?email=`: [`Capabilities::list_user`].
    ListUserCapabilities,
    /// `GET /manage_capabilities/list_all`: [`Capabilities::list_all`].
    ListAllCapabilities,
    /// `POST /manage_capabilities/add`: [`Capabilities::add`].
    AddCapability,
    /// `POST /manage_capabilities/remove`: [`Capabilities::remove`].
    RemoveCapability,
    /// `POST /manage_capabilities/set`: [`Capabilities::set`].
    SetCapabilities,
    /// `POST /token/revoke`: [`Capabilities::revoke`].
    RevokeToken,
    /// `GET /headless_token`: `RelyingParty::headless_token`.
    HeadlessToken,
    /// `GET /revoke_token`: `RelyingParty::revoke_token_page`.
    RevokeTokenPage,
    /// `POST /revoke_token`: `RelyingParty::revoke_token`.
    RevokeTokenPost,
}

/// One route: its method, its path (relative to where the routes are
/// mounted) and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path, starting with `/`.
    pub path: &'static str,
    /// What the route does, for [`Routes::dispatch`].
    pub kind: RouteKind,
}

impl Route {
    const fn new(method: Method, path: &'static str, kind: RouteKind) -> Self {
        Self { method, path, kind }
    }
}

/// A request to one of the [`Routes`], as the adapter copied it in.
#[derive(Debug)]
pub struct RouteRequest<'a, H> {
    /// The caller the middleware authenticated; `None` for a guest.
    pub caller: Option<&'a Authenticated>,
    /// The realm of the middleware's challenges, for refusals.
    pub realm: &'a str,
    /// The query string, `None` without a `?`.
    pub query: Option<&'a str>,
    /// The path and query as the browser asked for it (before any prefix
    /// was stripped by nesting), where a browser sent to log in comes back.
    pub target: &'a str,
    /// The request headers.
    pub headers: &'a H,
    /// The request body (empty for `GET`).
    pub body: &'a [u8],
    /// The client's address (the connection's peer) when the framework
    /// gives it: what per-client limits count by.
    pub peer: Option<std::net::IpAddr>,
}

/// easy-oauth's routes, as data: the management routes of a
/// [`Capabilities`] service, or (feature `login`) the login routes of a
/// `RelyingParty`
/// (which include the management routes, with `/token` answered by the
/// relying party). The add, remove and set routes exist only when
/// [`Capabilities::management_enabled`].
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Routes {
    capabilities: Capabilities,
    #[cfg(feature = "login")]
    login: Option<RelyingParty>,
    table: Arc<[Route]>,
    prefix: Arc<str>,
}

impl Routes {
    /// The management routes of `capabilities`:
    ///
    /// - `GET /manage_capabilities/list?email=`, `/list_user?email=` (the
    ///   same), `/list_all` (managers: every user and the graph)
    /// - `POST /manage_capabilities/add`, `/remove`, `/set` (only when
    ///   [`Capabilities::management_enabled`])
    /// - `GET /token?user=bot@service` (a service token)
    /// - `POST /token/revoke`
    pub fn management(capabilities: Capabilities) -> Self {
        let table = Self::table(
            &capabilities,
            &[Route::new(Method::Get, "/token", RouteKind::ServiceToken)],
        );
        Self {
            capabilities,
            #[cfg(feature = "login")]
            login: None,
            table,
            prefix: Arc::from(""),
        }
    }

    /// The login routes of `rp`, under its configured `prefix`
    /// ([`mount_path`](Self::mount_path)):
    ///
    /// - `GET /login`, `GET /auth`, `GET /logout`, `GET /token`
    ///   ([`RelyingParty`]'s methods of the same names), `POST /logout`
    ///   ([`RelyingParty::logout_post`]), `GET /headless_token`
    ///   ([`RelyingParty::headless_token`]), `GET`/`POST /revoke_token`
    ///   ([`RelyingParty::revoke_token_page`], [`RelyingParty::revoke_token`]);
    /// - `GET /manage_capabilities/list`, `/list_user`, `/list_all`,
    ///   `POST /manage_capabilities/add`,
    ///   `/remove`, `/set`, `POST /token/revoke` (the relying party's
    ///   capabilities).
    #[cfg(feature = "login")]
    pub fn login(rp: RelyingParty) -> Self {
        let capabilities = rp.capabilities().clone();
        let table = Self::table(
            &capabilities,
            &[
                Route::new(Method::Get, "/login", RouteKind::Login),
                Route::new(Method::Get, "/auth", RouteKind::Callback),
                Route::new(Method::Get, "/logout", RouteKind::Logout),
                Route::new(Method::Post, "/logout", RouteKind::LogoutPost),
                Route::new(Method::Get, "/token", RouteKind::Token),
                Route::new(Method::Get, "/headless_token", RouteKind::HeadlessToken),
                Route::new(Method::Get, "/revoke_token", RouteKind::RevokeTokenPage),
                Route::new(Method::Post, "/revoke_token", RouteKind::RevokeTokenPost),
            ],
        );
        Self {
            capabilities,
            prefix: Arc::from(rp.config().prefix.as_str()),
            login: Some(rp),
            table,
        }
    }

    /// `own` and the management routes `capabilities` enables.
    fn table(capabilities: &Capabilities, own: &[Route]) -> Arc<[Route]> {
        let mut table = own.to_vec();
        table.extend([
            Route::new(
                Method::Get,
                "/manage_capabilities/list",
                RouteKind::ListCapabilities,
            ),
            Route::new(
                Method::Get,
                "/manage_capabilities/list_user",
                RouteKind::ListUserCapabilities,
            ),
            Route::new(
                Method::Get,
                "/manage_capabilities/list_all",
                RouteKind::ListAllCapabilities,
            ),
        ]);
        if capabilities.management_enabled() {
            table.extend([
                Route::new(
                    Method::Post,
                    "/manage_capabilities/add",
                    RouteKind::AddCapability,
                ),
                Route::new(
                    Method::Post,
                    "/manage_capabilities/remove",
                    RouteKind::RemoveCapability,
                ),
                Route::new(
                    Method::Post,
                    "/manage_capabilities/set",
                    RouteKind::SetCapabilities,
                ),
            ]);
        }
        table.push(Route::new(
            Method::Post,
            "/token/revoke",
            RouteKind::RevokeToken,
        ));
        table.into()
    }

    /// The routes to mount, each path once.
    pub fn routes(&self) -> &[Route] {
        &self.table
    }

    /// Where the adapter mounts `route`: the login routes under the
    /// relying party's configured `prefix` (so an application does not
    /// give it a second time), the management routes where the
    /// application nests them.
    pub fn mount_path(&self, route: &Route) -> String {
        format!("{}{}", self.prefix, route.path)
    }

    /// Answers `req` to the route `kind`.
    ///
    /// Management answers are JSON with
    /// [`JSON_HEADERS`](portcullis_core::reply::JSON_HEADERS), refusals
    /// core's error response in `req.realm`; the relying party's routes
    /// answer as its methods do. A `kind` this table does not mount (a
    /// login route of management routes) is a configuration error (500).
    ///
    /// The state-changing routes (`POST`) of the login routes refuse a
    /// caller authenticated by the session cookie whose request does not
    /// come from the site's own origin (403, see
    /// `RelyingParty::require_same_origin_for`), whatever
    /// `csrf_protection` says; the JSON routes (add, remove, set, revoke)
    /// require `Content-Type: application/json` of every caller (415).
    pub async fn dispatch<H: HeaderLookup>(
        &self,
        kind: RouteKind,
        req: RouteRequest<'_, H>,
    ) -> Reply {
        let caps = &self.capabilities;
        let caller = req.caller;
        let json_body = matches!(
            kind,
            RouteKind::AddCapability
                | RouteKind::RemoveCapability
                | RouteKind::SetCapabilities
                | RouteKind::RevokeToken
        );
        if json_body {
            #[cfg(feature = "login")]
            if let Some(rp) = &self.login
                && let Err(e) = rp.require_same_origin_for(caller, req.headers)
            {
                return Reply::error(&e, req.realm);
            }
            if !is_json(req.headers.header("content-type")) {
                return unsupported_media_type();
            }
        }
        #[cfg(feature = "login")]
        if let Some(rp) = &self.login {
            match kind {
                RouteKind::Login => return rp.login_from(req.query, req.headers, req.peer).await,
                RouteKind::Callback => return rp.callback(req.query, req.headers).await,
                RouteKind::Logout => return rp.logout(req.headers).await,
                RouteKind::LogoutPost => return rp.logout_post(req.headers).await,
                RouteKind::Token => {
                    return rp.token(caller, req.query, req.target, req.headers).await;
                }
                RouteKind::RevokeTokenPage => return rp.revoke_token_page(),
                RouteKind::HeadlessToken => return rp.headless_token(req.query).await,
                RouteKind::RevokeTokenPost => {
                    return rp.revoke_token(caller, req.headers, req.body).await;
                }
                _ => {}
            }
        }
        let outcome = match kind {
            RouteKind::Login
            | RouteKind::Callback
            | RouteKind::Logout
            | RouteKind::LogoutPost
            | RouteKind::Token
            | RouteKind::RevokeTokenPage
            | RouteKind::RevokeTokenPost
            | RouteKind::HeadlessToken => Err(Error::config(
                "a login route dispatched to management routes",
            )),
            RouteKind::ServiceToken => {
                let user = last_param(req.query, "user");
                caps.issue_service_token(caller, user.as_deref()).await
            }
            RouteKind::ListCapabilities => {
                let email = last_param(req.query, "email");
                caps.list(caller, email.as_deref()).await
            }
            RouteKind::ListUserCapabilities => {
                let email = last_param(req.query, "email");
                caps.list_user(caller, email.as_deref()).await
            }
            RouteKind::ListAllCapabilities => caps.list_all(caller).await,
            RouteKind::AddCapability => caps.add(caller, req.body).await,
            RouteKind::RemoveCapability => caps.remove(caller, req.body).await,
            RouteKind::SetCapabilities => caps.set(caller, req.body).await,
            RouteKind::RevokeToken => caps.revoke(caller, req.body).await,
        };
        match outcome {
            Ok(reply) => reply,
            Err(e) => Reply::error(&e, req.realm),
        }
    }
}

/// Whether a `Content-Type` is JSON (`application/json`, parameters allowed).
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// 415: a JSON route's body was not declared JSON. (A browser form or a
/// `text/plain` body, which another site can send without asking.)
fn unsupported_media_type() -> Reply {
    let body = serde_json::json!({
        "error": "unsupported_media_type",
        "error_description": "the body must be JSON, sent with `Content-Type: application/json`",
    });
    Reply {
        status: 415,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("cache-control", "no-store".to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// The last value of query parameter `name`, as a form decoder into a map
/// keeps it.
fn last_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(n, _)| n == name)
        .last()
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::{is_json, last_param};

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        for other in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
            Some(""),
        ] {
            assert!(!is_json(other), "{other:?}");
        }
    }

    #[test]
    fn the_last_value_of_a_parameter_wins() {
        assert_eq!(
            last_param(Some("email=a%40x&email=b%40x"), "email").as_deref(),
            Some("b@x")
        );
        assert_eq!(last_param(Some("user=bot%40service"), "email"), None);
        assert_eq!(last_param(None, "user"), None);
    }
}
