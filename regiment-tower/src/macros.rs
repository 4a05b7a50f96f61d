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
