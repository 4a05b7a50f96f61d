//! [`Server`]: the options of a regiment HTTP server, supervisor and HTTP alike, and the
//! `serve` forms that run it.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use regiment_core::{EnvOverrides, Handle, Role};

use crate::app_service::AppService;
use crate::http_options::{HttpOptions, Nagle};
use crate::service::with_routes_built;
use crate::{App, HttpService, ResponseBody};
use crate::{Error, worker_server};

/// The address [`Server`] listens on when none is given (and `REGIMENT_BIND` is unset).
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

type MasterHook = Box<dyn FnOnce(&Handle) + Send>;

/// A regiment HTTP server: the supervisor's options ([`regiment_core::Builder`]) plus the HTTP
/// ones, and the `serve` forms.
///
/// Each option of [`regiment_core::Builder`] has a method of the same name here (the
/// supervisor's options, below the HTTP ones in this page).
///
/// The same program runs as master and as workers, so a `Server` is built the same way in both:
/// the master uses the supervisor options, each worker the HTTP ones and the app.
///
/// Every option has an environment override, applied in master and workers alike: those of
/// [`regiment_core::Builder`] (`REGIMENT_WORKERS`, `REGIMENT_BIND`, `REGIMENT_DRAIN_TIMEOUT`,
/// ...) and `REGIMENT_HEADER_READ_TIMEOUT`, `REGIMENT_IDLE_GRACE`, `REGIMENT_HTTP2_KEEP_ALIVE`.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, routing::get};
///
/// #[tokio::main]
/// async fn main() -> Result<(), regiment_axum::Error> {
///     let app = Router::new().route("/", get(|| async { "hello" }));
///     regiment_axum::Server::new()
///         .workers(4)
///         .bind("127.0.0.1:8080")
///         .drain_timeout(Duration::from_secs(20))
///         .idle_grace(Duration::from_millis(500))
///         .supervisor(|b| b.max_surge(2)) // any other regiment_core::Builder option
///         .on_master(|handle| {
///             let mut events = handle.events();
///             tokio::spawn(async move {
///                 while let Some(e) = events.recv().await {
///                     println!("{e:?}");
///                 }
///             });
///         })
///         .serve(app)
///         .await
/// }
/// ```
pub struct Server {
    core: regiment_core::Builder,
    has_bind: bool,
    http: HttpOptions,
    env_overrides: EnvOverrides,
    on_master: Option<MasterHook>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("core", &self.core)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The defaults of [`regiment_core::Builder::new`], listening on [`DEFAULT_BIND`] unless
    /// [`Server::bind`] or `REGIMENT_BIND` says otherwise; header read timeout
    /// [`crate::DEFAULT_HEADER_READ_TIMEOUT`], idle grace [`crate::DEFAULT_IDLE_GRACE`],
    /// [`Nagle::Off`] (`TCP_NODELAY` set).
    ///
    /// ```
    /// let server = regiment_axum::Server::new().workers(2);
    /// # drop(server);
    /// ```
    pub fn new() -> Self {
        Self {
            has_bind: false,
            ..Self::with_builder(regiment_core::Builder::new())
        }
    }

    /// Starts from a supervisor builder you configured (its bind addresses are used as they
    /// are: no default address is added).
    ///
    /// ```
    /// let core = regiment_core::Builder::new().workers(2).bind("127.0.0.1:8080");
    /// let server = regiment_axum::Server::with_builder(core);
    /// # drop(server);
    /// ```
    pub fn with_builder(core: regiment_core::Builder) -> Self {
        Self {
            core,
            has_bind: true,
            http: HttpOptions::default(),
            env_overrides: EnvOverrides::Apply,
            on_master: None,
        }
    }

    /// Changes any option of the supervisor builder.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = regiment_axum::Server::new()
    ///     .supervisor(|b| b.start_timeout(Duration::from_secs(60)).env("APP_ENV", "prod"));
    /// # drop(server);
    /// ```
    pub fn supervisor(
        mut self,
        f: impl FnOnce(regiment_core::Builder) -> regiment_core::Builder,
    ) -> Self {
        self.core = f(self.core);
        self
    }

    /// The number of workers (default: one per CPU). See [`regiment_core::Builder::workers`].
    pub fn workers(self, n: usize) -> Self {
        self.supervisor(|b| b.workers(n))
    }

    /// Adds an address to listen on: `127.0.0.1:3000`, `[::]:80`, `unix:/run/app.sock`. May be
    /// repeated; the first call replaces [`DEFAULT_BIND`].
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.has_bind = true;
        let addr = addr.into();
        self.supervisor(|b| b.bind(addr))
    }

    /// How long a draining worker has to finish before the master kills it (default 30 s).
    pub fn drain_timeout(self, d: Duration) -> Self {
        self.supervisor(|b| b.drain_timeout(d))
    }

    /// How long a new worker has to become ready (default 30 s).
    pub fn start_timeout(self, d: Duration) -> Self {
        self.supervisor(|b| b.start_timeout(d))
    }

    /// How long a client may take to send a request header (default 10 s). It also bounds how
    /// long an HTTP/1 keep-alive connection may stay idle between requests, and how long a new
    /// connection may take to send its first request or complete the HTTP/2 preface; it is
    /// what keeps a client that sends half a header from holding a draining worker open. An
    /// HTTP/2 connection past its preface is not bound by it: it may stay idle (see
    /// [`Server::http2_keep_alive`]).
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.http.header_read_timeout = d;
        self
    }

    /// How long an idle HTTP/1 keep-alive connection of a draining worker is kept open for a
    /// request the client may be sending right now (default 1 s). Such a request is served
    /// with `Connection: close`; a connection idle for the whole grace is closed with FIN.
    pub fn idle_grace(mut self, d: Duration) -> Self {
        self.http.idle_grace = d;
        self
    }

    /// Sends HTTP/2 keep-alive PINGs on a connection after `interval` without a frame from its
    /// peer, and closes it if the peer does not acknowledge one within 20 s: this finds peers
    /// gone without a word (a host that vanished, a NAT that forgot the flow). Off by default:
    /// an idle HTTP/2 connection is kept for as long as its client keeps it open.
    /// `REGIMENT_HTTP2_KEEP_ALIVE` overrides it (`30s`, or `off`).
    ///
    /// ```
    /// use std::time::Duration;
    /// // gRPC clients commonly ping too; a server that pings finds half-open channels itself.
    /// let server = regiment_axum::Server::new().http2_keep_alive(Duration::from_secs(60));
    /// # drop(server);
    /// ```
    pub fn http2_keep_alive(mut self, interval: Duration) -> Self {
        self.http.http2_keep_alive = Some(interval);
        self
    }

    /// A check each new worker must pass before it counts as ready: a failure is a failed
    /// start (the old worker keeps serving; a rollout whose workers keep failing it is
    /// aborted). See [`crate::HealthCheck`]. It gates readiness `listening` (the default):
    /// under `started` the master counts a worker ready as soon as it runs, and under `manual`
    /// a `ready()` called by the app factory comes before the check.
    ///
    /// ```no_run
    /// # async fn run(app: axum::Router) -> Result<(), regiment_axum::Error> {
    /// use regiment_axum::HealthCheck;
    /// regiment_axum::Server::new().health_check(HealthCheck::path("/healthz")).serve(app).await
    /// # }
    /// ```
    pub fn health_check(mut self, check: crate::HealthCheck) -> Self {
        self.http.health_check = Some(check);
        self
    }

    /// Whether Nagle's algorithm delays small writes on accepted TCP connections
    /// ([`Nagle::Off`] by default: `TCP_NODELAY` is set). See [`Nagle`].
    pub fn nagle(mut self, nagle: Nagle) -> Self {
        self.http.nagle = nagle;
        self
    }

    /// Whether `REGIMENT_*` environment variables override the options, the HTTP ones and the
    /// supervisor's ([`EnvOverrides::Apply`] by default). See
    /// [`regiment_core::Builder::env_overrides`].
    pub fn env_overrides(mut self, overrides: EnvOverrides) -> Self {
        self.env_overrides = overrides;
        self.supervisor(|b| b.env_overrides(overrides))
    }

    /// Runs `hook` in the master only, once the listeners are bound and before any worker
    /// starts: subscribe to events, print where the server listens, expose the [`Handle`].
    pub fn on_master(mut self, hook: impl FnOnce(&Handle) + Send + 'static) -> Self {
        self.on_master = Some(Box::new(hook));
        self
    }

    /// Serves an [`App`]: an axum `Router`, or one wrapped in layers as a whole. Supervises in
    /// the master, serves in each worker. Returns in the master once a stop signal stopped
    /// every worker, in a worker once it has drained.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), regiment_axum::Error> {
    /// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
    /// regiment_axum::Server::new().workers(2).serve(app).await
    /// # }
    /// ```
    pub async fn serve<A, B>(self, app: A) -> Result<(), Error>
    where
        A: App<B>,
        B: ResponseBody,
    {
        self.serve_factory(|| async move { app }).await
    }

    /// Serves the [`App`] `factory` builds; the factory runs in each worker, never in the
    /// master, so it can open pools or warm caches.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), regiment_axum::Error> {
    /// regiment_axum::Server::new()
    ///     .serve_factory(|| async {
    ///         // e.g. open a database pool here: only workers run this.
    ///         axum::Router::new().route("/", axum::routing::get(|| async { "hi" }))
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn serve_factory<F, Fut, A, B>(self, factory: F) -> Result<(), Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = A>,
        A: App<B>,
        B: ResponseBody,
    {
        self.serve_service_factory(
            || async move { AppService::new(with_routes_built(factory().await)) },
        )
        .await
    }

    /// Serves any hyper service (a tower service goes through
    /// [`TowerToHyperService`](hyper_util::service::TowerToHyperService)), with the same engine
    /// and drain as axum apps.
    ///
    /// ```no_run
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use hyper::body::Incoming;
    ///
    /// # async fn run() -> Result<(), regiment_axum::Error> {
    /// let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("hello")))
    /// });
    /// regiment_axum::Server::new().serve_service(service).await
    /// # }
    /// ```
    pub async fn serve_service<S, B>(self, service: S) -> Result<(), Error>
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        self.serve_service_factory(|| async move { service }).await
    }

    /// Serves the hyper service `factory` builds in each worker (never in the master).
    ///
    /// ```no_run
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use hyper::body::Incoming;
    ///
    /// # async fn run() -> Result<(), regiment_axum::Error> {
    /// regiment_axum::Server::new()
    ///     .serve_service_factory(|| async {
    ///         hyper::service::service_fn(|_req: Request<Incoming>| async {
    ///             Ok::<_, Infallible>(Response::new(String::from("hello")))
    ///         })
    ///     })
    ///     .await
    /// # }
    /// ```
    pub async fn serve_service_factory<F, Fut, S, B>(self, factory: F) -> Result<(), Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = S>,
        S: HttpService<B>,
        B: ResponseBody,
    {
        let http = match self.env_overrides {
            EnvOverrides::Apply => self.http.with_env()?,
            EnvOverrides::Ignore => self.http,
        }
        .checked()?;
        match regiment_core::role() {
            Role::Master => {
                // The master never serves: drop what the factory holds now. With `serve(app)`
                // that is the app built in main, whose criteria layers registered jobs with
                // regiment-tower's sampler thread; the sampler holds them weakly, so once they
                // are dropped it stops sampling this process's memory and ticking criteria
                // (no CPU in an idle master, no criterion firing in it) and parks.
                drop(factory);
                let mut core = self.core;
                if !self.has_bind {
                    // REGIMENT_BIND, when set, replaces it in build().
                    core = core.bind(DEFAULT_BIND);
                }
                let supervisor = core.build()?;
                if supervisor.listeners().is_empty() {
                    // Workers would each fail for want of a socket, forever, with backoff.
                    return Err(Error::NoBindAddress);
                }
                if let Some(hook) = self.on_master {
                    hook(&supervisor.handle());
                }
                supervisor.run().await?;
                Ok(())
            }
            Role::Worker => worker_server::run(factory, http).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's table of options gives `bind`'s default as `serve` and `Server` have it.
    #[test]
    fn the_readme_gives_the_default_address_of_serve() {
        let readme = include_str!("../../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `bind(addr)`"))
            .expect("README's row of bind");
        assert!(row.contains(&format!("`{DEFAULT_BIND}`")), "{row}");
    }

    /// This test process is not a worker, so `serve` takes the master's path.
    #[tokio::test]
    async fn a_master_without_an_address_fails_before_starting_workers() {
        let server = Server::with_builder(regiment_core::Builder::new().workers(1))
            .env_overrides(EnvOverrides::Ignore)
            .on_master(|_| panic!("no hook may run: nothing was started"));
        let err = server.serve(axum::Router::new()).await.unwrap_err();
        assert!(matches!(err, Error::NoBindAddress), "{err}");
        assert!(err.to_string().contains("REGIMENT_BIND"));
    }
}
