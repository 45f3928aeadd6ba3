//! [`AppTester::actix`]: serves an actix-web application under test, from
//! a thread of its own (see [`serve::actix`]), stopped through the server's
//! handle when the tester is dropped.

use std::future::Future;
use std::io;

use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};

use crate::AppTester;
use crate::serve;
use crate::tester::{LoginProvider, bind_for};

impl AppTester {
    /// Serves an actix-web application on a free loopback port and
    /// registers its callback (`{base_url}{prefix}/auth`) and its
    /// post-logout page (`{base_url}/`) at `provider`.
    ///
    /// `app(base_url)` runs on the test's runtime (build the relying party
    /// there) and answers the application factory actix-web calls on its
    /// worker: a `Fn() -> App` that is `Send + Clone`, typically
    /// `move || my_app(rp.clone())`. Needs the `actix` feature.
    ///
    /// ```ignore
    /// let tester = AppTester::actix(&provider, "", |base_url| async move {
    ///     let rp = RelyingParty::builder(config_for(&base_url)).build().await.unwrap();
    ///     move || my_app(rp.clone())
    /// })
    /// .await?;
    /// ```
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound or the server cannot start.
    pub async fn actix<P, F, Fut, A, T, B>(
        provider: &P,
        prefix: &str,
        app: F,
    ) -> io::Result<AppTester>
    where
        P: LoginProvider + ?Sized,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = A>,
        A: Fn() -> App<T> + Send + Clone + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let (listener, base_url) = bind_for(provider, prefix)?;
        let factory = app(base_url.clone()).await;
        let stop = serve::actix(listener, factory)?;
        Ok(AppTester::serving(base_url, prefix, stop))
    }
}
