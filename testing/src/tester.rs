//! [`AppTester`]: drives an application that logs its users in through a
//! provider, as a browser and as scripts would, over real HTTP on loopback.
//!
//! `tester.client(Some("alice@example.com")).await` logs alice in through
//! the application's real login flow (`/login` → provider `/authorize` →
//! `/auth`), keeping the cookies it is given; `client(None)` is a guest.
//! Requests read as `client.get("/x").expect(403).await`.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::serve::{self, Stop};
use crate::{MockProvider, NodeOidcServer};

/// A provider an [`AppTester`] can log users in at.
pub trait LoginProvider {
    /// Registers the application's callback URL (a no-op for providers
    /// that check none).
    fn register_redirect_uri(&self, uri: &str);
    /// Registers where the provider may send the browser after logout.
    fn register_post_logout_redirect_uri(&self, uri: &str);
}

impl LoginProvider for MockProvider {
    fn register_redirect_uri(&self, uri: &str) {
        MockProvider::register_redirect_uri(self, uri);
    }
    fn register_post_logout_redirect_uri(&self, uri: &str) {
        MockProvider::register_post_logout_redirect_uri(self, uri);
    }
}

impl LoginProvider for NodeOidcServer {
    fn register_redirect_uri(&self, _uri: &str) {}
    fn register_post_logout_redirect_uri(&self, _uri: &str) {}
}

impl LoginProvider for crate::EasyOauthServer {
    fn register_redirect_uri(&self, _uri: &str) {}
    fn register_post_logout_redirect_uri(&self, _uri: &str) {}
}

/// An application under test, served on a loopback port.
pub struct AppTester {
    base_url: String,
    prefix: String,
    stop: Option<Stop>,
}

impl std::fmt::Debug for AppTester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTester")
            .field("base_url", &self.base_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for AppTester {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// A free loopback listener and the base URL it serves, with the provider
/// told about the callback and post-logout URLs of an app under `prefix`.
pub(crate) fn bind_for<P: LoginProvider + ?Sized>(
    provider: &P,
    prefix: &str,
) -> io::Result<(std::net::TcpListener, String)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base_url = format!("http://{}", listener.local_addr()?);
    provider.register_redirect_uri(&format!("{base_url}{prefix}/auth"));
    provider.register_post_logout_redirect_uri(&format!("{base_url}/"));
    Ok((listener, base_url))
}

impl AppTester {
    /// Serves the axum application `app(base_url)` on a free loopback port
    /// and registers its callback (`{base_url}{prefix}/auth`) and its
    /// post-logout page (`{base_url}/`) at `provider`.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn axum<P, F, Fut>(provider: &P, prefix: &str, app: F) -> io::Result<AppTester>
    where
        P: LoginProvider + ?Sized,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = axum::Router>,
    {
        let (listener, base_url) = bind_for(provider, prefix)?;
        let router = app(base_url.clone()).await;
        let stop = serve::axum(listener, router)?;
        Ok(AppTester::serving(base_url, prefix, stop))
    }

    /// An application served at `base_url` by the caller, stopped by `stop`
    /// when the tester is dropped (how each framework's constructor ends).
    pub fn serving(
        base_url: impl Into<String>,
        prefix: &str,
        stop: impl FnOnce() + Send + Sync + 'static,
    ) -> AppTester {
        AppTester {
            base_url: base_url.into(),
            prefix: prefix.to_owned(),
            stop: Some(Box::new(stop)),
        }
    }

    /// An application already served at `base_url` (another framework's
    /// server, say), whose login routes live under `prefix`.
    pub fn at(base_url: impl Into<String>, prefix: &str) -> AppTester {
        AppTester {
            base_url: base_url.into(),
            prefix: prefix.to_owned(),
            stop: None,
        }
    }

    /// The application's base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The login routes' prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A client: logged in as `email` through the real login flow, or a
    /// guest for `None`.
    ///
    /// # Panics
    ///
    /// When the login flow does not end with a session cookie; the message
    /// tells which step answered what.
    pub async fn client(&self, email: Option<&str>) -> TestClient {
        let client = TestClient {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            base_url: self.base_url.clone(),
            prefix: self.prefix.clone(),
            cookies: Arc::new(Mutex::new(BTreeMap::new())),
        };
        if let Some(email) = email {
            client.login(email, "/").await;
        }
        client
    }
}

/// A browser-like client of the application: it keeps the application's
/// cookies and follows no redirect by itself.
#[derive(Debug, Clone)]
pub struct TestClient {
    http: reqwest::Client,
    base_url: String,
    prefix: String,
    cookies: Arc<Mutex<BTreeMap<String, String>>>,
}

impl TestClient {
    /// Logs in as `email` through the application's login flow, asking to
    /// come back to `next`; answers where the application sent the browser.
    ///
    /// # Panics
    ///
    /// When a step of the flow answers something unexpected.
    pub async fn login(&self, email: &str, next: &str) -> String {
        let next_q: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let to_provider = self
            .get(&format!("{}/login?next={next_q}", self.prefix))
            .expect(303)
            .await;
        let authorize = to_provider.location().unwrap_or_default().to_owned();
        let callback = self.follow_provider(&authorize, email).await;
        let back = self.get_url(&callback).expect(303).await;
        assert!(
            self.cookie_matching("portcullis-session").is_some(),
            "no session cookie after the callback: {}",
            back.text()
        );
        back.location().unwrap_or_default().to_owned()
    }

    /// Sends the browser to the provider's authorization URL as `email`
    /// (as the `login_hint`), and answers the callback URL the provider
    /// redirects to. The application's cookies are not sent to the provider.
    ///
    /// # Panics
    ///
    /// When the provider does not redirect.
    pub async fn follow_provider(&self, authorize_url: &str, email: &str) -> String {
        let mut url = url::Url::parse(authorize_url).unwrap_or_else(|e| {
            panic!("the login did not redirect to a URL ({authorize_url:?}): {e}")
        });
        url.query_pairs_mut().append_pair("login_hint", email);
        let resp = self
            .http
            .get(url.as_str())
            .send()
            .await
            .unwrap_or_else(|e| panic!("the provider cannot be reached: {e}"));
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(l) if (300..400).contains(&status) => l,
            _ => panic!(
                "the provider answered {status} instead of redirecting: {}",
                resp.text().await.unwrap_or_default()
            ),
        }
    }

    /// A GET of `path` on the application.
    pub fn get(&self, path: &str) -> TestRequest {
        self.request(Method::GET, path)
    }

    /// A POST of `path` on the application.
    pub fn post(&self, path: &str) -> TestRequest {
        self.request(Method::POST, path)
    }

    /// A request of `method` on `path`.
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        self.request_url(method, &format!("{}{path}", self.base_url))
    }

    /// A GET of an absolute URL (a `Location` the application answered).
    pub fn get_url(&self, url: &str) -> TestRequest {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base_url)
        } else {
            url.to_owned()
        };
        self.request_url(Method::GET, &url)
    }

    fn request_url(&self, method: Method, url: &str) -> TestRequest {
        TestRequest {
            client: self.clone(),
            method,
            url: url.to_owned(),
            headers: HeaderMap::new(),
            body: None,
            send_cookies: true,
            send_origin: true,
        }
    }

    /// A bearer token for scripts: `GET {prefix}/token`'s `token`.
    ///
    /// # Panics
    ///
    /// When the application does not answer one.
    pub async fn token(&self) -> String {
        let resp = self
            .get(&format!("{}/token", self.prefix))
            .expect(200)
            .await;
        resp.json()["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", resp.text()))
            .to_owned()
    }

    /// The value of cookie `name`, if the client holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar().get(name).cloned()
    }

    /// The name and value of the first cookie whose name contains `part`.
    pub fn cookie_matching(&self, part: &str) -> Option<(String, String)> {
        self.jar()
            .iter()
            .find(|(n, _)| n.contains(part))
            .map(|(n, v)| (n.clone(), v.clone()))
    }

    /// Sets (or, with `None`, removes) a cookie by hand: to tamper with one, say.
    pub fn set_cookie(&self, name: &str, value: Option<&str>) {
        let mut jar = self.jar();
        match value {
            Some(v) => {
                jar.insert(name.to_owned(), v.to_owned());
            }
            None => {
                jar.remove(name);
            }
        }
    }

    /// Forgets every cookie.
    pub fn clear_cookies(&self) {
        self.jar().clear();
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar();
        if jar.is_empty() {
            return None;
        }
        Some(
            jar.iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn store_cookies(&self, headers: &HeaderMap) {
        let mut jar = self.jar();
        for value in headers.get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let removed = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("max-age=-")
            });
            if removed {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), val.trim().to_owned());
            }
        }
    }
}

/// A request being built; send it with [`send`](Self::send) or [`expect`](Self::expect).
///
/// As a browser does, a request whose method is not `GET`, `HEAD` or
/// `OPTIONS` carries `Origin: {base_url}` (a page of the application sent
/// it), unless it sets its own `Origin` or asks for
/// [`without_origin`](Self::without_origin).
#[derive(Debug)]
pub struct TestRequest {
    client: TestClient,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    send_cookies: bool,
    send_origin: bool,
}

impl TestRequest {
    /// Adds a header.
    ///
    /// # Panics
    ///
    /// For a name or value HTTP does not allow.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let value =
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header value {value:?}: {e}"));
        self.headers.append(name, value);
        self
    }

    /// Sends `Authorization: Bearer {token}`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Asks as a browser does (`Accept: text/html`).
    pub fn browser(self) -> Self {
        self.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
    }

    /// Sends `value` as a JSON body.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Some(value.to_string().into_bytes());
        self.header("content-type", "application/json")
    }

    /// Sends `body` as is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends no cookie with this request (a script, not the browser).
    pub fn without_cookies(mut self) -> Self {
        self.send_cookies = false;
        self
    }

    /// Sends no `Origin` of the client's own (a script, or a request whose
    /// origin signals the test sets one by one: `Sec-Fetch-Site`, `Referer`).
    pub fn without_origin(mut self) -> Self {
        self.send_origin = false;
        self
    }

    /// Sends the headers of a request another site's page made the browser
    /// send (`Sec-Fetch-Site: cross-site`, `Origin` and `Referer` of that site).
    pub fn from_another_site(self) -> Self {
        self.without_origin()
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://attacker.example")
            .header("referer", "https://attacker.example/page")
    }

    /// Sends the request; the client keeps the cookies the answer sets.
    ///
    /// # Panics
    ///
    /// When the application cannot be reached.
    pub async fn send(self) -> TestResponse {
        let mut headers = self.headers;
        let unsafe_method = !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if self.send_origin
            && unsafe_method
            && !headers.contains_key("origin")
            && let Ok(origin) = HeaderValue::from_str(&self.client.base_url)
        {
            headers.insert("origin", origin);
        }
        let mut req = self
            .client
            .http
            .request(self.method.clone(), &self.url)
            .headers(headers);
        if self.send_cookies
            && let Some(c) = self.client.cookie_header()
        {
            req = req.header("cookie", c);
        }
        if let Some(body) = self.body {
            req = req.body(body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.url));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if self.send_cookies {
            self.client.store_cookies(&headers);
        }
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// Sends the request and checks its status.
    ///
    /// # Panics
    ///
    /// When the status is not `status`; the message shows the body.
    pub async fn expect(self, status: u16) -> TestResponse {
        let what = format!("{} {}", self.method, self.url);
        let resp = self.send().await;
        assert_eq!(
            resp.status,
            status,
            "{what} answered {}: {}",
            resp.status,
            resp.text()
        );
        resp
    }
}

/// An answer of the application.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of header `name`.
    pub fn headers_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
}
