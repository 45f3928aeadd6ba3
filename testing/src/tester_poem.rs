//! [`AppTester::poem`]: serves a poem application under test.

use std::future::Future;
use std::io;

use poem::listener::TcpAcceptor;
use poem::{IntoEndpoint, Server};
use tokio::task::JoinHandle;

use crate::AppTester;
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
        let acceptor = TcpAcceptor::from_std(listener)?;
        let ep = app(base_url.clone()).await.into_endpoint();
        let server: JoinHandle<()> = tokio::spawn(async move {
            // A failing server shows up as failing requests in the test.
            let _ = Server::new_with_acceptor(acceptor).run(ep).await;
        });
        Ok(AppTester::serving(base_url, prefix, move || server.abort()))
    }
}
