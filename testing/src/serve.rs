//! Serving an application under test on a listener already bound (by
//! [`AppTester`](crate::AppTester) or a conformance [`Adapter`]), and
//! stopping it: one function per framework, shared by the testers and the
//! adapters' test crates.
//!
//! [`Adapter`]: crate::conformance::Adapter

use std::io;

/// Stops a served application.
pub type Stop = Box<dyn FnOnce() + Send + Sync>;

/// Serves the axum application `app` on `listener` (bound, non-blocking)
/// from a task of the current Tokio runtime.
///
/// # Errors
///
/// When the listener cannot be registered with the runtime.
pub fn axum(listener: std::net::TcpListener, app: axum::Router) -> io::Result<Stop> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let server = tokio::spawn(async move {
        // A failing server shows up as failing requests in the test.
        // With the peer's address, as a deployed service is served (the
        // other frameworks always have it).
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok(Box::new(move || server.abort()))
}

/// Serves the poem application `app` (any endpoint: a `Route` wrapped in
/// middleware, say) on `listener` (bound, non-blocking) from a task of the
/// current Tokio runtime. Needs the `poem` feature.
///
/// # Errors
///
/// When the listener cannot be registered with the runtime.
#[cfg(feature = "poem")]
pub fn poem<E>(listener: std::net::TcpListener, app: E) -> io::Result<Stop>
where
    E: poem::IntoEndpoint,
    E::Endpoint: 'static,
{
    let acceptor = poem::listener::TcpAcceptor::from_std(listener)?;
    let ep = app.into_endpoint();
    let server = tokio::spawn(async move {
        // A failing server shows up as failing requests in the test.
        let _ = poem::Server::new_with_acceptor(acceptor).run(ep).await;
    });
    Ok(Box::new(move || server.abort()))
}

/// Serves the actix-web application `factory` builds on `listener` (bound,
/// non-blocking). Needs the `actix` feature.
///
/// actix-web runs its server on its own single-threaded runtime (actix-rt),
/// whatever runtime the test uses, so the application is served from a
/// dedicated thread running an actix `System`, with one worker; `factory`
/// is the `Fn() -> App` actix-web calls on that worker (`Send + Clone`,
/// typically `move || my_app(rp.clone())`). This call returns once the
/// server listens.
///
/// # Errors
///
/// When the thread cannot be started or the server cannot serve `listener`.
#[cfg(feature = "actix")]
pub fn actix<A, T, B>(listener: std::net::TcpListener, factory: A) -> io::Result<Stop>
where
    A: Fn() -> actix_web::App<T> + Send + Clone + 'static,
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    actix_with_workers(listener, factory, 1)
}

/// [`actix`] with `workers` worker threads (the load harness uses one per core).
///
/// # Errors
///
/// When the thread cannot be started or the server cannot serve `listener`.
#[cfg(feature = "actix")]
pub fn actix_with_workers<A, T, B>(
    listener: std::net::TcpListener,
    factory: A,
    workers: usize,
) -> io::Result<Stop>
where
    A: Fn() -> actix_web::App<T> + Send + Clone + 'static,
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let (started, handle) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("actix-app".to_owned())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(factory)
                    .workers(workers)
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
    let handle = handle
        .recv()
        .map_err(|_| io::Error::other("the actix-web server thread ended early"))??;
    // The stop command is sent at once; the returned future only waits for
    // the server to finish, which the test need not do.
    Ok(Box::new(move || drop(handle.stop(false))))
}
