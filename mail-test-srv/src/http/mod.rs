//! The HTTP report API: the original text routes, the JSON API, metrics, health.
//!
//! OWNER: helper "faults/store/http". Agreed interface: `pub fn router(state: State) -> axum::Router`.

use crate::State;

/// All routes of one instance, bound to its state.
#[allow(unused_variables, clippy::todo)]
pub fn router(state: State) -> axum::Router {
    todo!()
}
