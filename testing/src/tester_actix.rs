//! [`AppTester::actix`]: serves an actix-web application under test.
//!
//! actix-web runs its server on its own single-threaded runtime (actix-rt),
//! whatever runtime the test uses, so the application is served from a
//! dedicated thread running an actix `System`, with one worker, and stopped
//! through the server's handle when the tester is dropped.

use std::future::Future;
use std::io;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer};

use crate::AppTester;
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
        let handle = serve(listener, factory).await?;
        Ok(AppTester::serving(base_url, prefix, move || {
            // The stop command is sent at once; the returned future only
            // waits for the server to finish, which the test need not do.
            drop(handle.stop(false));
        }))
    }
}

/// Serves `factory`'s application on `listener` from a thread of its own.
async fn serve<A, T, B>(listener: std::net::TcpListener, factory: A) -> io::Result<ServerHandle>
where
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
    let (started, handle) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("actix-app".to_owned())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(factory)
                    .workers(1)
                    .disable_signals()
                    .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = started.send(Ok(server.handle()));
                        // A failing server shows up as failing requests in the test.
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            });
        })?;
    handle
        .await
        .map_err(|_| io::Error::other("the actix-web server thread ended early"))?
}
