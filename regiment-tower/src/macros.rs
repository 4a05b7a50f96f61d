//! What every layer's service and response future would otherwise write out again, written
//! once (tower-http's `src/macros.rs` is the model).

/// `get_ref`, `get_mut` and `into_inner` for a service that keeps the service it wraps in its
/// `inner` field, of type `S`. Each layer's module docs show them once.
macro_rules! define_inner_service_accessors {
    () => {
        /// The wrapped service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The wrapped service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// A response future that is the inner service's future passed through as is: for layers whose
/// work is done when the request is accepted. A newtype with no field of its own, so it adds
/// nothing to the inner future's size and nothing per request (tests/no_allocation.rs).
macro_rules! pass_through_future {
    ($(#[$m:meta])* pub struct $name:ident<$f:ident>;) => {
        pin_project_lite::pin_project! {
            $(#[$m])*
            pub struct $name<$f> {
                #[pin]
                inner: $f,
            }
        }

        impl<$f> $name<$f> {
            #[inline]
            pub(crate) fn new(inner: $f) -> Self {
                Self { inner }
            }
        }

        impl<$f: std::future::Future> std::future::Future for $name<$f> {
            type Output = $f::Output;

            #[inline]
            fn poll(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                self.project().inner.poll(cx)
            }
        }

        impl<$f: std::fmt::Debug> std::fmt::Debug for $name<$f> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("inner", &self.inner)
                    .finish()
            }
        }
    };
}

/// The service of a layer whose work is done when a request is accepted: the struct (the
/// wrapped service and the layer's shared state, behind an `Arc`), `layer()`, the inner
/// service accessors, `Debug`, and the `Service` impl. `call` asks the state's `accept()` (an
/// `#[inline]` method: whether the criterion is met), calls its `fire()` (out of line) if so,
/// then the inner service, whose future comes back as the module's `ResponseFuture` (a
/// `pass_through_future!`), which must be in scope.
macro_rules! accepting_service {
    (
        $(#[$m:meta])*
        pub struct $name:ident<S> { $state:ident: Arc<$State:ty> }

        $(#[$lm:meta])*
        pub fn layer(&self) -> $Layer:ident;
    ) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $name<S> {
            pub(super) inner: S,
            pub(super) $state: std::sync::Arc<$State>,
        }

        impl<S> $name<S> {
            $(#[$lm])*
            pub fn layer(&self) -> $Layer {
                $Layer {
                    $state: self.$state.clone(),
                }
            }

            define_inner_service_accessors!();
        }

        impl<S: std::fmt::Debug> std::fmt::Debug for $name<S> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("inner", &self.inner)
                    .field("layer", &self.layer())
                    .finish()
            }
        }

        impl<S, R> tower_service::Service<R> for $name<S>
        where
            S: tower_service::Service<R>,
        {
            type Response = S::Response;
            type Error = S::Error;
            // Nothing happens after the call: the inner future passed through, at no cost.
            type Future = ResponseFuture<S::Future>;

            #[inline]
            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            #[inline]
            fn call(&mut self, req: R) -> Self::Future {
                if self.$state.accept() {
                    return self.fire_then_call(req);
                }
                ResponseFuture::new(self.inner.call(req))
            }
        }

        impl<S> $name<S> {
            /// The request that finds the criterion met: fires, then calls. Out of line, with
            /// the request, because of the request path: a call the compiler cannot see into,
            /// between `call`'s start and the inner `call`, would make it copy the request (a
            /// few hundred bytes) on every request, to keep it safe across.
            #[cold]
            #[inline(never)]
            fn fire_then_call<R>(&mut self, req: R) -> ResponseFuture<S::Future>
            where
                S: tower_service::Service<R>,
            {
                self.$state.fire();
                ResponseFuture::new(self.inner.call(req))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::{memory_footprint, request_count};

    #[test]
    fn the_pass_through_futures_are_the_inner_one_and_no_bigger() {
        type Inner = std::future::Ready<Result<[u8; 24], ()>>;
        let inner = std::mem::size_of::<Inner>();
        assert_eq!(
            std::mem::size_of::<memory_footprint::ResponseFuture<Inner>>(),
            inner
        );
        assert_eq!(
            std::mem::size_of::<request_count::ResponseFuture<Inner>>(),
            inner
        );
    }
}
