//! [`AppTester::poem`]: serves a poem application under test.

use std::future::Future;
use std::io;

use poem::IntoEndpoint;

use crate::AppTester;
use crate::serve;
use crate::tester::{LoginProvider, bind_for};

impl AppTester {
    /// Serves the poem application `app(base_url)` (any endpoint: a
    /// `Route` wrapped in middleware, say) on a free loopback port and
    /// registers its callback (`{base_url}{prefix}/auth`) and its
    /// post-logout page (`{base_url}/`) at `provider`. Needs the `poem`
    /// feature.
    ///
    /// ```ignore
    /// let tester = AppTester::poem(&provider, "", |base_url| async move {
    ///     let rp = RelyingParty::builder(config_for(&base_url)).build().await.unwrap();
    ///     my_app(rp)
    /// })
    /// .await?;
    /// ```
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn poem<P, F, Fut, E>(provider: &P, prefix: &str, app: F) -> io::Result<AppTester>
    where
        P: LoginProvider + ?Sized,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = E>,
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        let (listener, base_url) = bind_for(provider, prefix)?;
        let ep = app(base_url.clone()).await;
        let stop = serve::poem(listener, ep)?;
        Ok(AppTester::serving(base_url, prefix, stop))
    }
}
